// Package rig composes instruments into one insitu.BlackBox, registered as
// kind "rig".
//
// Parts are actuators (Apply a slice of the query: SLM phases, DAC volts,
// later SMU levels), sensors (Measure: camera region sums or pixels, ADC
// volts, later power-meter readings and SMU read-backs), or both (a DAQ
// board). One Query, under one lock, is: check x against the Spec, apply
// every actuator in config order, wait for the slowest part's settle time
// plus the rig's own, measure every sensor in config order. The Spec's
// inputs are <part>/<coordinate> with the device's range narrowed by the
// part's configured bounds (a bound outside the device's range is an
// error naming both); its outputs are <part>/<output>. SafeState puts
// every part in its safe state exactly once, carrying on past failures, and
// does not wait for a running query (the guard calls it when one hangs).
//
// A new kind of instrument plugs in by implementing Actuator and/or Sensor
// (each embeds Part: SafeState) and registering a part type with
// RegisterPart, so bench configs can name it. A PartType has two halves:
// Open builds the part, and Describe computes from the config alone what
// the open part would report (its coordinates and outputs), opening
// nothing. The rig registers a describer with insitu.RegisterDescriber
// built from them, so insitu.Describe gives a rig config's Spec without
// touching the bench (`insitu config check`), exactly as the built rig's:
// both are composed by the same code. Building a rig describes every part
// first, so a config error in any part is reported before any device is
// opened.
//
// A config's blackbox section (durations as "300ms"; lengths in metres):
//
//	blackbox:
//	  kind: rig
//	  name: bench-slm-camera
//	  settle: 10ms                  # extra wait after the slowest part
//	  parts:
//	    - name: slm
//	      type: slm
//	      display: {type: x11, output: HDMI-1}   # a full-screen window on that monitor (docs/bench.md)
//	      # display: {type: x11, geometry: 1920x1152+1920+0, x11_display: ":0", allow_primary: false}
//	      # display: {type: fbdev, path: /dev/fb1, width: 1920, height: 1080, bits: 32}
//	      # display: {type: memory, width: 1920, height: 1080}
//	      n: 60                     # the N×N phase pattern (controls)
//	      macro_pixel: 1            # display pixels per control and side: n 10, macro_pixel 6 → 60×60 pixels
//	      origin: [930, 510]        # top-left in the display; omit to centre
//	      background: 0             # gray level outside the pattern
//	      two_pi_gray: 218          # linear LUT: gray level of 2π …
//	      # lut: {gray: [0, 64, 128, 192, 255], phase: [0, 1.4, 3.0, 4.7, 6.4]}  # … or measured
//	      wavelength: 700e-9
//	      lut_wavelength: 633e-9    # the LUT's; phases scale by wavelength/lut_wavelength
//	      correction_file: /etc/insitu/slm-flatness-700nm.bmp
//	      settle: 300ms
//	      bounds: {lower: 0, upper: 3.1416}   # one value, or one per coordinate, within the device's range
//	    - name: cam
//	      type: camera
//	      backend: {type: v4l2, path: /dev/video0, width: 640, height: 480, format: y16, skip: 1}
//	      # backend: {type: genicam, device: 192.168.10.2, pixel_format: Mono12, width: 640, height: 480}  # make build-aravis
//	      # backend: {type: memory, source: NAME, width: 60, height: 60, reference_exposure: 1ms}
//	      exposure: 5ms
//	      roi: [290, 210, 60, 60]   # x, y, w, h
//	      average: 4
//	      measure: regions          # sum (default) | regions | image
//	      saturated_output: true    # adds output "saturated": ROI pixels at full scale
//	      regions:
//	        - {name: left, roi: [0, 0, 30, 60]}
//	        - {name: right, roi: [30, 0, 30, 60]}
//	    - name: pnn
//	      type: daq
//	      bus: "1"                  # i2creg name: /dev/i2c-1, or an emulated bus's name
//	      vdd: 5
//	      settle: 2ms
//	      average: 4
//	      outputs:
//	        - {name: w0, chip: mcp4728, addr: 0x60, channel: 0, ref: internal, gain2: true, min: 0, max: 3.3}
//	        - {name: w1, chip: mcp4725, addr: 0x61, min: 0, max: 2.5}
//	      inputs:
//	        - {name: y0, chip: ads1115, addr: 0x48, input: ain0, full_scale: 4.096, rate: 860}
//
// A memory camera's frames come from a FrameSource registered by name
// (RegisterFrameSource); it receives the parts built before it, so a twin
// can render what an in-memory SLM shows.
//
// Twin mode. With `twin: true` in the blackbox section (what `insitu run
// --dry-run` sets), or through NewTwin, the rig is built from the same
// hardware config with every part replaced by its in-process twin,
// registered per part type with RegisterPartTwin: the part's real driver
// on a twin of its device, opening no device. This package registers the
// SLM's (a memory display) and the camera's (a memory source showing the
// scene registered as TwinFrameSource); simulators/bench registers the
// SMU's, the power meter's and the DAQ's twins and that scene, so this
// package imports no simulator. The twin rig's Spec is the described one;
// the bench's settle and acquisition times are counted, not waited
// (SetTwinSleep, TwinReport).
package rig
