package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop/journal"
)

// The browser test drives a real headless Chromium over the DevTools
// protocol: a WebSocket carrying JSON commands. The few commands it needs
// (navigate, evaluate, mouse events, screenshot) are spoken by the small
// client below, so the test needs nothing but the browser.

// findChromium returns the browser's path, or "" when none is installed.
func findChromium() string {
	if p := os.Getenv("INSITU_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium with its DevTools endpoint.
type browser struct {
	cmd  *exec.Cmd
	done chan struct{}
	port int
	out  *syncBuffer
}

func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--window-size=1400,1600", "about:blank")
	b := &browser{cmd: cmd, done: make(chan struct{}), out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.done
	})
	// With port 0 the browser writes the port it chose into the profile.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			if line, _, _ := strings.Cut(string(data), "\n"); line != "" {
				if p, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && p > 0 {
					b.port = p
					return b
				}
			}
		}
		select {
		case <-b.done:
			t.Fatalf("%s exited:\n%s", path, b.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no DevTools port after 60 s:\n%s", path, b.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// page returns a DevTools session on the browser's first page.
func (b *browser) page(t *testing.T) *cdp {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/json/list", b.port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Type == "page" && tg.WS != "" {
			c, err := dialCDP(tg.WS)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.close)
			return c
		}
	}
	t.Fatalf("no page among the browser's targets: %+v", targets)
	return nil
}

// ---- a minimal WebSocket client (RFC 6455): text frames, masked ----

type wsConn struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex // serializes writes
}

func wsDial(raw string) (*wsConn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	_, _ = rand.Read(k)
	key := base64.StdEncoding.EncodeToString(k)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, key)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &wsConn{c: c, r: r}, nil
}

func (w *wsConn) writeFrame(op byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var h []byte
	h = append(h, 0x80|op)
	switch n := len(p); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n < 1<<16:
		h = append(h, 0x80|126, byte(n>>8), byte(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	h = append(h, mask...)
	body := make([]byte, len(p))
	for i := range p {
		body[i] = p[i] ^ mask[i%4]
	}
	_, err := w.c.Write(append(h, body...))
	return err
}

// read returns the next text or binary message, answering pings.
func (w *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(w.r, mask); err != nil {
				return nil, err
			}
		}
		if n > 1<<28 {
			return nil, fmt.Errorf("websocket frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(w.r, p); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, io.EOF
		case 0x9:
			if err := w.writeFrame(0xA, p); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, p...)
		if fin {
			return msg, nil
		}
	}
}

// ---- DevTools protocol ----

type cdp struct {
	ws      *wsConn
	mu      sync.Mutex
	next    int
	pending map[int]chan cdpReply
	closed  chan struct{}
	err     error
}

type cdpReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func dialCDP(ws string) (*cdp, error) {
	w, err := wsDial(ws)
	if err != nil {
		return nil, err
	}
	c := &cdp{ws: w, pending: map[int]chan cdpReply{}, closed: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *cdp) readLoop() {
	defer close(c.closed)
	for {
		msg, err := c.ws.read()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var r cdpReply
		if json.Unmarshal(msg, &r) != nil || r.ID == 0 {
			continue // an event
		}
		c.mu.Lock()
		ch := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

func (c *cdp) close() { c.ws.c.Close(); <-c.closed }

// call sends one command and decodes its result into out (may be nil).
func (c *cdp) call(method string, params any, out any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if err := c.ws.writeFrame(0x1, b); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-c.closed:
		return fmt.Errorf("%s: connection closed: %v", method, c.err)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no reply in 30 s", method)
	}
}

// eval evaluates a JavaScript expression whose value is a string.
func (c *cdp) eval(expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return "", err
	}
	if r.Exception != nil {
		return "", errors.New(r.Exception.Text)
	}
	s, _ := r.Result.Value.(string)
	return s, nil
}

// click presses and releases the left mouse button on the centre of the
// element with id, as a user's click does.
func (c *cdp) click(id string) error {
	pos, err := c.eval(fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect(); return JSON.stringify({x: r.x + r.width / 2, y: r.y + r.height / 2, disabled: e.disabled}); })()`, id))
	if err != nil {
		return err
	}
	var p struct {
		X, Y     float64
		Disabled bool
	}
	if err := json.Unmarshal([]byte(pos), &p); err != nil {
		return err
	}
	if p.Disabled {
		return fmt.Errorf("#%s is disabled", id)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": p.X, "y": p.Y}
		if typ != "mouseMoved" {
			ev["button"], ev["clickCount"] = "left", 1
		}
		if err := c.call("Input.dispatchMouseEvent", ev, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *cdp) screenshot() ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := c.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false}, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}

// owmsLive is an SLM-and-camera twin run for the browser: 24×24 phases in
// (a phase map), a 24×24 camera image out, a slew limit that the guard
// ramps (events and counters to show), and a rate limit that keeps the run
// going while the page is checked.
const owmsLive = `
name: owms-live
method: gradpie
seed: 1
iterations: 300
blackbox: {kind: owms, n: 24, pitch: 20.0e-6, output: camera, camera: {binning: 1}}
objective: {kind: distance}
init: {points: 20}
top_k: 3
local: {samples: 0, sigma: 0.02}
step_lr: 0.05
surrogate: {hidden: [64, 64], initial_epochs: 20, epochs: 2, batch: 64, k: 5}
safety: {max_step: 3.0, slew_mode: ramp, rate: 60, burst: 1, timeout: 5s}
`

// TestServeLiveBrowserStop opens the live view in headless Chromium,
// checks that the curve, the images and the guard's counters render,
// clicks STOP, and checks that the run ended interrupted (resumable) with
// the device in its safe state. INSITU_SCREENSHOT=PATH also writes the
// screenshot there (docs/live-view.png).
func TestServeLiveBrowserStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a run")
	}
	chromium := findChromium()
	if chromium == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium; or set INSITU_CHROMIUM): the browser test is skipped")
	}
	cfg := writeFile(t, "owms-live.yaml", owmsLive)
	dir := filepath.Join(t.TempDir(), "run")
	r := startLive(t, "run", cfg, "--out", dir, "-q")
	b := startBrowser(t, chromium)
	page := b.page(t)
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := page.call(m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := page.call("Page.navigate", map[string]any{"url": r.url}, nil); err != nil {
		t.Fatal(err)
	}
	// Wait for a few iterations to be drawn: the curve, both images, the
	// loss and timing plots, the guard's counters and some events.
	var d struct {
		Points, Passed, Status, Input, Output, Loss, Events, Address string
	}
	deadline := time.Now().Add(180 * time.Second)
	for {
		s, err := page.eval(`JSON.stringify({
			points: document.getElementById("curve").dataset.points,
			passed: document.getElementById("g-passed") ? document.getElementById("g-passed").textContent : "",
			status: document.getElementById("status").textContent,
			input: document.getElementById("input-image").hidden ? "" : document.getElementById("input-caption").textContent,
			output: document.getElementById("output-image").hidden ? "" : document.getElementById("output-caption").textContent,
			loss: document.getElementById("loss").dataset.points || "0",
			events: String(document.querySelectorAll("#events tbody tr").length),
			address: location.href})`)
		if err == nil && json.Unmarshal([]byte(s), &d) == nil {
			if atoi(d.Points) >= 60 && atoi(d.Passed) > 0 && atoi(d.Loss) >= 5 && d.Input != "" && d.Output != "" && atoi(d.Events) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not render within 180 s: %+v (eval error %v)\nrun:\n%s\nbrowser:\n%s", d, err, r.out, b.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.ToLower(d.Status) != "running" || strings.Contains(d.Address, "token") || !strings.Contains(d.Input, "phase map") || !strings.Contains(d.Output, "24×24 image") {
		t.Errorf("page: %+v", d)
	}
	noEmptyPanel(t, page)
	shot, err := page.screenshot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[uint32]bool{}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y += 3 {
		for x := bd.Min.X; x < bd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|b>>11] = true
		}
	}
	if bd.Dx() < 1000 || len(colours) < 50 {
		t.Errorf("screenshot %v with %d colours: blank?", bd, len(colours))
	}
	path := filepath.Join(t.TempDir(), "live-view.png")
	if p := os.Getenv("INSITU_SCREENSHOT"); p != "" {
		path = p
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d×%d, %d bytes)", path, bd.Dx(), bd.Dy(), len(shot))

	if err := page.click("stop"); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 120*time.Second); code != 130 {
		t.Fatalf("exit code %d after STOP, want 130\n%s", code, r.out)
	}
	if !strings.Contains(r.out.String(), "STOP from the live view") {
		t.Errorf("the run does not say it was stopped from the live view:\n%s", r.out)
	}
	status, n, events, started := journalState(t, dir)
	if status != journal.RunInterrupted || !hasEvent(events, "safestate") || started != 0 {
		t.Fatalf("after STOP: status %s, %d queries, %d left started, safestate event %v", status, n, started, hasEvent(events, "safestate"))
	}
	// The page shows the final state.
	deadline = time.Now().Add(20 * time.Second)
	for {
		s, _ := page.eval(`document.getElementById("status").textContent`)
		if strings.Contains(s, "interrupted") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the page's status is %q after the run ended", s)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// emptyPanels lists the panels of the page that show nothing: a panel on
// screen whose canvases on screen are blank (fewer than 50 drawn pixels),
// or that has no canvas or table on screen at all; and the axis titles
// the plots drew.
const emptyPanels = `(() => {
  const bad = [];
  for (const p of document.querySelectorAll("main .panel")) {
    if (p.hidden || getComputedStyle(p).display === "none") continue;
    const title = (p.querySelector("h2") || {}).textContent || "?";
    const shown = [...p.querySelectorAll("canvas, table")].filter((e) =>
      getComputedStyle(e).display !== "none" && e.getBoundingClientRect().height > 0);
    if (shown.length === 0) { bad.push(title + ": nothing on screen"); continue; }
    for (const c of shown) {
      if (c.tagName !== "CANVAS") { if (c.rows.length === 0) bad.push(title + ": empty table"); continue; }
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      if (n < 50) bad.push(title + ": blank canvas #" + c.id);
    }
  }
  return JSON.stringify(bad);
})()`

// noEmptyPanel fails the test when a panel of the page shows nothing.
func noEmptyPanel(t *testing.T, page *cdp) {
	t.Helper()
	s, err := page.eval(emptyPanels)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	if err := json.Unmarshal([]byte(s), &bad); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	for _, b := range bad {
		t.Errorf("empty panel: %s", b)
	}
}

// smuLive is a run whose inputs and outputs are bars, not images: the SMU
// twin in process, slowed down by the guard's rate so the page can be
// looked at.
const smuLive = `
name: smu-live
method: gradpie
seed: 1
iterations: 200
blackbox:
  kind: rig
  name: smu-live
  twin: true
  parts:
    - name: smu
      type: smu
      transport: {type: lxi, lxi: {address: 127.0.0.1:1}}
      idn: "(?i)twin"
      compliance: 1e-3
      range: 2
      min: 0
      max: 0.7
      step: 0.1
      bounds: {lower: 0, upper: 0.7}
objective: {kind: distance, outputs: [smu/current], target: [5.0e-4]}
init: {points: 8}
top_k: 2
surrogate: {hidden: [16, 16], initial_epochs: 10, steps: 4, batch: 16, k: 3}
safety: {max_step: 1, rate: 40, burst: 1, timeout: 5s, check_outputs: off}
`

// TestServeLiveBrowserBars opens the live view of a run whose inputs and
// outputs are drawn as bars (no image): no panel may be empty (a hidden
// image canvas once showed as an empty box), and every plot has its axis
// titles, with units where known. INSITU_SCREENSHOT_BARS=PATH writes the
// screenshot there.
func TestServeLiveBrowserBars(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a run")
	}
	chromium := findChromium()
	if chromium == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium; or set INSITU_CHROMIUM): the browser test is skipped")
	}
	cfg := writeFile(t, "smu-live.yaml", smuLive)
	dir := filepath.Join(t.TempDir(), "run")
	r := startLive(t, "run", cfg, "--out", dir, "-q")
	b := startBrowser(t, chromium)
	page := b.page(t)
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := page.call(m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := page.call("Page.navigate", map[string]any{"url": r.url}, nil); err != nil {
		t.Fatal(err)
	}
	var d struct{ Points, Loss, Timing, Input, Output string }
	deadline := time.Now().Add(120 * time.Second)
	for {
		s, err := page.eval(`JSON.stringify({
			points: document.getElementById("curve").dataset.points,
			loss: document.getElementById("loss").dataset.points || "0",
			timing: document.getElementById("timing").dataset.points || "0",
			input: document.getElementById("input-bars").hidden ? "" : document.getElementById("input-caption").textContent,
			output: document.getElementById("output-bars").hidden ? "" : document.getElementById("output-caption").textContent})`)
		if err == nil && json.Unmarshal([]byte(s), &d) == nil {
			if atoi(d.Points) >= 20 && atoi(d.Loss) >= 3 && atoi(d.Timing) >= 2 && d.Input != "" && d.Output != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not render within 120 s: %+v (eval error %v)\nrun:\n%s\nbrowser:\n%s", d, err, r.out, b.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	noEmptyPanel(t, page)
	// The image canvases are hidden for a run without images.
	if s, _ := page.eval(`getComputedStyle(document.getElementById("input-image")).display + "," + getComputedStyle(document.getElementById("output-image")).display`); s != "none,none" {
		t.Errorf("image canvases of a bars-only run: display %s, want none,none", s)
	}
	shot, err := page.screenshot()
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("INSITU_SCREENSHOT_BARS"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := page.click("stop"); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 120*time.Second); code != 130 {
		t.Fatalf("exit code %d after STOP, want 130\n%s", code, r.out)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
