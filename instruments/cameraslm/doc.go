// Package cameraslm calibrates a phase SLM against a camera that sees its
// Fourier plane, the way slmsuite's FourierSLM does, on the patterns a rig
// shows through its guard:
//
//   - the settle time (Settle): the panel switched between a flat pattern
//     and a blazed grating, the camera sampled at increasing delays after
//     each frame is shown, a first-order response fitted;
//   - the Fourier map (Fourier): blazed gratings of several vectors, both
//     signs, the first-order spot's background-subtracted centroid found in
//     each image, and the affine map from the SLM's spatial frequencies to
//     camera pixels fitted by least squares, with each point's residual;
//   - the wavefront (Wavefront): superpixel interference (Čižmár, Mazilu
//     and Dholakia, Nat. Photon. 4, 388 (2010)), each superpixel's phase
//     relative to a reference one stepped at a point the Fourier map
//     places, giving the panel's flat-field phase error and the correction
//     that cancels it.
//
// A calibration draws on the SLM part's controls (Grid) and reads the
// camera's image through a Bench, which the command line implements on a
// guarded, journaled rig. Spatial frequencies k are in cycles per SLM
// display pixel, x along the display's columns and y along its rows;
// camera positions in sensor pixels, x along columns.
package cameraslm
