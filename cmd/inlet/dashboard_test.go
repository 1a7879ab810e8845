package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/testenv"
)

// The dashboard in a real headless Chromium against the real binary: devices
// appear live, the device page charts new readings as they arrive, the CSV link
// downloads what was sent, UDP readings show up too, the page fits a phone, and
// makes no request outside the server.
func TestDashboard(t *testing.T) {
	chromium := findChromium(t)
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--db", db, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0")
	b := newBrowser(t, chromium, srv.ready.HTTP)
	shots := screenshotDir(t)

	b.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(b.base+"/"))
	b.waitFor("the overview to show a healthy store", time.Now().Add(10*time.Second),
		`document.querySelector('#ov-store')?.dataset.healthy === 'true'`, `document.querySelector('#overview')?.innerText`)
	b.waitFor("the empty state with no devices", time.Now().Add(3*time.Second),
		`!document.querySelector('#empty').hidden && document.querySelectorAll('#devices tbody tr').length === 0`,
		`document.querySelector('#home')?.innerText`)
	// The hint names the ports this server listens on and a command that sends
	// to them, and there is no sign-out without a token. This server listens on
	// loopback only: no addresses for devices on the network, but a note saying so.
	_, tcpPort, _ := net.SplitHostPort(srv.ready.TCP)
	_, udpPort, _ := net.SplitHostPort(srv.ready.UDP)
	b.waitFor("the empty state to name TCP port "+tcpPort+", UDP port "+udpPort+" and inlet send to them", time.Now().Add(3*time.Second),
		`document.querySelector('#port-tcp').textContent === `+jsString(tcpPort)+`
			&& document.querySelector('#port-udp').textContent === `+jsString(udpPort)+`
			&& document.querySelector('#try-send').textContent === `+jsString("inlet send --addr 127.0.0.1:"+tcpPort)+`
			&& !document.querySelector('#loopback-only').hidden && document.querySelector('#hosts').hidden
			&& document.querySelector('#logout').hidden`,
		`document.querySelector('#empty')?.innerText`)
	b.screenshot(shots, "empty.png")

	// The tutorial sketch: connect, write a reading, close. While inlet learns
	// whether the readings are a counter it says so, in grey; after nine
	// counting up by one it is a counter with a green 0 lost, never red.
	const dev = "127.0.0.2"
	var sent time.Time
	stored := 0
	sendStored := func(dev string, lines ...string) {
		t.Helper()
		for _, line := range lines {
			if err := sendOnce(dev, srv.ready.TCP, line); err != nil {
				t.Fatal(err)
			}
			sent = time.Now()
			stored++
			n := stored
			// Like the sketch, one after the other: separate connections carry no
			// order between them, so wait for each to be stored.
			waitFor(t, "message stored", 5*time.Second, func() bool { return len(messages(t, db, inlet.Query{Device: dev})) == n })
		}
	}
	sendStored(dev, counters(1, 3)...)
	row := rowJS(dev)
	b.waitFor("device "+dev+" in the table with last value 3, 3 messages, values, loss unknown", sent.Add(2*time.Second),
		`(() => { const r = `+row+`; return !!r && r.querySelector('.last-value').textContent.trim() === '3'
			&& r.querySelector('.messages').textContent.trim() === '3'
			&& r.querySelector('.loss').textContent === 'values, loss unknown' && !r.querySelector('.loss .bad'); })()`,
		`document.querySelector('#devices')?.innerText`)
	sendStored(dev, counters(4, 10)...)
	b.waitFor("device "+dev+" a counter with last value 10, 10 messages, 0 lost", sent.Add(2*time.Second),
		`(() => { const r = `+row+`; return !!r && r.querySelector('.last-value').textContent.trim() === '10'
			&& r.querySelector('.messages').textContent.trim() === '10'
			&& r.querySelector('.loss').textContent === 'counter0 lost' && r.querySelector('.loss .badge.ok'); })()`,
		`document.querySelector('#devices')?.innerText`)
	if b.eval(`!document.querySelector('#empty').hidden`) == "true" {
		t.Errorf("the empty-state hint is still shown with a device in the table")
	}

	// A payload is text from the device, never markup.
	const hostile = "127.0.0.5"
	if err := sendOnce(hostile, srv.ready.TCP, "<b>bold</b>\x07<img src=x onerror=\"window.__xss=1\">\r\n"); err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	want := `<b>bold</b>\x07<img src=x onerror="window.__xss=1">`
	b.waitFor("the hostile payload shown as text", sent.Add(2*time.Second),
		`(() => { const r = `+rowJS(hostile)+`; return !!r && r.querySelector('.last-value').textContent === `+jsString(want)+`; })()`,
		`document.querySelector('#devices')?.innerText`)
	if got := b.eval(`document.querySelectorAll('#devices b, #devices img').length + ' ' + (window.__xss === undefined)`); got != "0 true" {
		t.Errorf("a payload became markup: %s", got)
	}
	b.screenshot(shots, "home.png")

	// The device page: click the row.
	b.do(chromedp.Click(chromedp.CSS(`#devices tr[data-device="` + dev + `"] td.messages`)))
	b.waitFor("the device page with a chart of 10 points, the stream open", time.Now().Add(5*time.Second),
		`!document.querySelector('#device-page').hidden && document.querySelector('#chart .uplot') !== null
			&& document.querySelector('#chart').dataset.points === '10' && document.querySelector('#chart').dataset.lastValue === '10'
			&& document.querySelector('#live').classList.contains('on')`,
		`JSON.stringify({hash: location.hash, chart: {...document.querySelector('#chart').dataset}, live: document.querySelector('#live').textContent})`)
	if got := b.eval(`location.hash`); got != "#/device/"+url.PathEscape(dev) {
		t.Errorf("device page hash %q", got)
	}
	if got := b.eval(`document.querySelector('#dev-name').textContent`); got != dev {
		t.Errorf("device page title %q, want %q", got, dev)
	}

	// Dates are local and 24-hour, as inlet devices prints them; the facts say
	// the kind; a plain device's raw table has no seq column.
	b.waitFor("the facts: counter, 24-hour first seen", time.Now().Add(2*time.Second),
		`/^counter\b/.test(document.querySelector('#facts dd').textContent)
			&& /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test([...document.querySelectorAll('#facts dt')].find(e => e.textContent === 'first seen').nextElementSibling.textContent)
			&& getComputedStyle(document.querySelector('#raw th.seq')).display === 'none'`,
		`document.querySelector('#facts').innerText`)

	// A new reading moves the chart's last point and tops the raw table.
	if err := sendOnce(dev, srv.ready.TCP, "11\r\n"); err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	b.waitFor("the chart's last point to become 11", sent.Add(2*time.Second),
		`document.querySelector('#chart').dataset.lastValue === '11' && document.querySelector('#chart').dataset.points === '11'`,
		`JSON.stringify({...document.querySelector('#chart').dataset})`)
	b.waitFor("the raw table to show 11 on top", time.Now().Add(time.Second),
		`document.querySelector('#raw tbody tr td.payload')?.textContent === '11' && document.querySelectorAll('#raw tbody tr').length === 11`,
		`document.querySelector('#raw')?.innerText`)

	// A counter that jumps from 11 to 14 lost two readings: a gap marker, and the
	// device's loss facts.
	if err := sendOnce(dev, srv.ready.TCP, "14\r\n"); err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	b.waitFor("a gap marker for the 2 missing readings", sent.Add(2*time.Second),
		`document.querySelector('#chart').dataset.lastValue === '14' && !document.querySelector('#marker-legend').hidden
			&& document.querySelector('#marker-legend').textContent.includes('2 readings missing')`,
		`JSON.stringify({chart: {...document.querySelector('#chart').dataset}, legend: document.querySelector('#marker-legend').textContent})`)
	b.waitFor("the loss badge to say 2 lost", sent.Add(3*time.Second),
		`document.querySelector('#dev-badge').textContent.includes('2 lost')`,
		`document.querySelector('#dev-badge').textContent + ' | ' + document.querySelector('#facts').innerText`)
	b.screenshot(shots, "device.png")

	// The CSV link downloads the readings shown.
	a := b.eval(`JSON.stringify({href: document.querySelector('a#csv').href, download: document.querySelector('a#csv').getAttribute('download')})`)
	var link struct{ Href, Download string }
	if err := json.Unmarshal([]byte(a), &link); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link.Href, b.base+"/api/messages?") || !strings.Contains(link.Href, "format=csv") ||
		!strings.Contains(link.Href, "device="+url.QueryEscape(dev)) {
		t.Errorf("CSV link %q", link.Href)
	}
	if !strings.HasSuffix(link.Download, ".csv") || !strings.Contains(link.Download, dev) {
		t.Errorf("CSV download name %q", link.Download)
	}
	body := b.evalAsync(`fetch(document.querySelector('a#csv').href, {credentials: 'same-origin'}).then(r => r.ok ? r.text() : 'HTTP ' + r.status)`)
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(records) == 0 {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	if !strings.HasPrefix(strings.Join(records[0], ","), "id,received_at,device,") {
		t.Errorf("CSV header %q", records[0])
	}
	payload := slices.Index(records[0], "payload")
	var payloads []string
	for _, r := range records[1:] {
		if payload >= 0 && payload < len(r) {
			payloads = append(payloads, r[payload])
		}
	}
	if want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "14"}; !slices.Equal(payloads, want) {
		t.Errorf("CSV payloads %q, want %q\n%s", payloads, want, body)
	}

	// Another range: its own chart and CSV link, kept in the address.
	b.do(chromedp.Click(chromedp.CSS(`#range button[data-range="5m"]`)))
	b.waitFor("the 5 min range", time.Now().Add(3*time.Second),
		`location.hash.endsWith('?range=5m') && document.querySelector('#range button[data-range="5m"]').getAttribute('aria-pressed') === 'true'
			&& document.querySelector('a#csv').href.includes('since=5m') && document.querySelector('#chart').dataset.points === '12'
			&& document.querySelector('#chart').dataset.lastValue === '14'`,
		`JSON.stringify({hash: location.hash, csv: document.querySelector('a#csv').href, chart: {...document.querySelector('#chart').dataset}})`)

	// Back home; a UDP reading, the tutorial's 10-byte NUL-padded datagram.
	const udpDev = "127.0.0.3"
	b.do(chromedp.Click(chromedp.CSS(`.crumbs a`)))
	b.waitFor("the home page again", time.Now().Add(2*time.Second),
		`!document.querySelector('#home').hidden && document.querySelector('#device-page').hidden`, `location.hash`)
	sent = sendUDP(t, udpDev, srv.ready.UDP, "5\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	b.waitFor("UDP device "+udpDev+" with last value 5", sent.Add(2*time.Second),
		`(() => { const r = `+rowJS(udpDev)+`; return !!r && r.querySelector('.last-value').textContent.trim() === '5'; })()`,
		`document.querySelector('#devices')?.innerText`)

	// A phone: no sideways scrolling of the page, the chart fits.
	b.do(chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
	b.waitFor("the home page to fit 375 px", time.Now().Add(2*time.Second),
		`innerWidth === 375 && document.documentElement.scrollWidth <= innerWidth + 1`,
		`JSON.stringify({scrollWidth: document.documentElement.scrollWidth, innerWidth})`)
	b.screenshot(shots, "home-phone.png")
	b.do(chromedp.Evaluate[chromedp.Void](`location.hash = '#/device/' + encodeURIComponent(` + jsString(dev) + `)`))
	b.waitFor("the device page to fit 375 px with its chart", time.Now().Add(5*time.Second),
		`document.querySelector('#chart').dataset.points === '12' && document.querySelector('#chart .uplot') !== null
			&& document.querySelector('#chart .uplot').getBoundingClientRect().right <= innerWidth
			&& document.documentElement.scrollWidth <= innerWidth + 1`,
		`JSON.stringify({scrollWidth: document.documentElement.scrollWidth, innerWidth, chart: {...document.querySelector('#chart').dataset},
			uplot: document.querySelector('#chart .uplot')?.getBoundingClientRect().width})`)
	b.screenshot(shots, "device-phone.png")

	// Back to a laptop: the same chart grows with the window.
	b.do(chromedp.EmulateViewport(1280, 900))
	b.waitFor("the chart to widen with the window", time.Now().Add(2*time.Second),
		`document.querySelector('#chart .uplot').getBoundingClientRect().width > 1000`,
		`document.querySelector('#chart .uplot').getBoundingClientRect().width`)

	// A sensor sending analogRead() values: grey, no loss facts, no markers; it
	// falls silent for 3 s, and the chart's line breaks there instead of
	// drawing a slope across the silence.
	const sensor = "127.0.0.6"
	adc := dialFrom(t, sensor, srv.ready.TCP) // one connection: its lines keep their order
	defer adc.Close()
	burst := func(from int) {
		for i := range 8 {
			if _, err := fmt.Fprintf(adc, "%d\r\n", 500+(from+i*7)%23); err != nil {
				t.Fatalf("sensor write: %v", err)
			}
			time.Sleep(150 * time.Millisecond)
		}
	}
	burst(0)
	time.Sleep(3 * time.Second)
	burst(8)
	waitFor(t, "the sensor's readings stored", 5*time.Second, func() bool { return len(messages(t, db, inlet.Query{Device: sensor})) == 16 })
	b.do(chromedp.Evaluate[chromedp.Void](`location.hash = '#/device/' + encodeURIComponent(` + jsString(sensor) + `)`))
	b.waitFor("the sensor's page: 16 points, one break in the line, values, loss unknown", time.Now().Add(5*time.Second),
		`document.querySelector('#chart').dataset.points === '16' && JSON.parse(document.querySelector('#chart').dataset.breaks).length === 1
			&& document.querySelector('#dev-badge').textContent === 'values, loss unknown'
			&& ![...document.querySelectorAll('#facts dt')].some(e => e.textContent === 'lost')
			&& document.querySelector('#marker-legend').hidden`,
		`JSON.stringify({chart: {...document.querySelector('#chart').dataset}, badge: document.querySelector('#dev-badge').textContent,
			facts: document.querySelector('#facts').innerText})`)
	// No pixel of the line's colour inside the break, and plenty outside it.
	pixels := b.eval(`(() => {
		const g = JSON.parse(document.querySelector('#chart').dataset.breaks)[0];
		const cv = document.querySelector('#chart canvas');
		const ctx = cv.getContext('2d');
		const stroke = [37, 99, 235]; // the first series colour, light scheme
		const count = (x0, x1) => {
			const d = ctx.getImageData(x0, 0, x1 - x0, cv.height).data;
			let n = 0;
			for (let i = 0; i < d.length; i += 4) {
				if (d[i + 3] > 100 && Math.abs(d[i] - stroke[0]) < 40 && Math.abs(d[i + 1] - stroke[1]) < 40 && Math.abs(d[i + 2] - stroke[2]) < 40) n++;
			}
			return n;
		};
		return count(g[0] + 8, g[1] - 8) + ' ' + count(0, g[0]) + ' ' + (g[1] - g[0]);
	})()`)
	var inBreak, before, width int
	if _, err := fmt.Sscan(pixels, &inBreak, &before, &width); err != nil || inBreak != 0 || before < 20 || width < 50 {
		t.Errorf("line pixels inside the break, before it, the break's width: %s (want 0, many, wide)", pixels)
	}
	b.screenshot(shots, "silence.png")

	b.check()
}

// With a token, the dashboard sends the browser to its sign-in form, which
// refuses a wrong token and lets the right one in.
func TestDashboardToken(t *testing.T) {
	chromium := findChromium(t)
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--db", db, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "secret")
	const dev = "127.0.0.4"
	if err := sendOnce(dev, srv.ready.TCP, "41\r\n"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, chromium, srv.ready.HTTP)
	shots := screenshotDir(t)

	// A link to a device page, opened without the token.
	b.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(b.base+"/#/device/"+dev))
	b.waitFor("the sign-in form", time.Now().Add(5*time.Second),
		`location.pathname === '/login' && document.querySelector('form#login input[name=token]') !== null
			&& document.querySelector('#login-error').hidden`,
		`location.href + ' | ' + document.body.innerText`)
	b.screenshot(shots, "login.png")

	b.submitToken("wrong")
	b.waitFor("the sign-in form to say Wrong token", time.Now().Add(5*time.Second),
		`location.pathname === '/login' && !document.querySelector('#login-error').hidden
			&& document.querySelector('#login-error').textContent.includes('Wrong token')`,
		`location.href + ' | ' + document.body.innerText`)
	b.screenshot(shots, "login-error.png")

	b.submitToken("secret")
	b.waitFor("the device page the link asked for", time.Now().Add(5*time.Second),
		`location.pathname === '/' && location.hash === '#/device/`+dev+`' && !document.querySelector('#device-page').hidden
			&& document.querySelector('#chart').dataset.lastValue === '41'`,
		`location.href + ' | ' + JSON.stringify({...document.querySelector('#chart')?.dataset})`)
	if b.eval(`document.querySelector('#logout').hidden`) != "false" {
		t.Errorf("signed in with a token, but there is no sign-out button")
	}
	b.do(chromedp.Click(chromedp.CSS(`.crumbs a`)))
	b.waitFor("the dashboard with device "+dev, time.Now().Add(3*time.Second),
		`(() => { const r = `+rowJS(dev)+`; return !!r && r.querySelector('.last-value').textContent.trim() === '41'; })()`,
		`location.href + ' | ' + document.body.innerText`)
	// Signing out clears the session: back to the form.
	b.do(chromedp.Click(chromedp.CSS(`#logout button`)), chromedp.WaitVisible(chromedp.CSS(`form#login`)))
	b.do(chromedp.Navigate(b.base + "/"))
	b.waitFor("the sign-in form again for /", time.Now().Add(5*time.Second),
		`location.pathname === '/login'`, `location.href`)
	b.check()
}

// findChromium returns the browser to drive; without one the test skips, or
// fails under scripts/test.
func findChromium(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "no chromium: /usr/bin/chromium is missing and chromium is not on PATH (apt-get install chromium)",
		"/usr/bin/chromium", "chromium")
}

// screenshotDir is kept after the test, so that a person can look at the pages.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "inlet-dashboard-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab on the dashboard at base.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string // uncaught exceptions and requests outside the server
}

func newBrowser(t *testing.T, chromium, httpAddr string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// The whole test, browser start included, is bounded.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 60*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	b := &browser{t: t, ctx: bctx, base: "http://" + httpAddr}

	// Subscribe before the first page loads; Run starts the browser.
	console := chromedp.Console(bctx)
	requests := chromedp.Events(bctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				b.problem("uncaught exception: %s", m.Text)
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u := ev.Request.URL
			if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") {
				b.problem("request outside the server: %s", u)
			}
		}
	}()
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// check fails the test for exceptions the page threw and requests it made
// outside the server.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Error(p)
	}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// eval returns the value of a JavaScript expression as text.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// evalAsync returns the text a JavaScript promise resolves to.
func (b *browser) evalAsync(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls the predicate until deadline and fails with what and the
// value of diag when it never holds.
func (b *browser) waitFor(what string, deadline time.Time, predicate, diag string) {
	b.t.Helper()
	start := time.Now()
	timeout := max(time.Until(deadline), 10*time.Millisecond)
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err == nil {
		return
	}
	state := "?"
	if v, derr := chromedp.Run(b.ctx, chromedp.Evaluate[any](diag)); derr == nil {
		state = fmt.Sprint(v)
	}
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		b.t.Fatalf("waited %s for %s; the page shows: %s", time.Since(start).Round(time.Millisecond), what, state)
	}
	b.t.Fatalf("waiting for %s: %v; the page shows: %s", what, err, state)
}

func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// submitToken types a token into the sign-in form and sends it.
func (b *browser) submitToken(token string) {
	b.t.Helper()
	b.do(chromedp.SendKeys(chromedp.ID("token"), token))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("submit"))); err != nil {
		b.t.Fatal(err)
	}
}

// rowJS is a JavaScript expression for the device table's row of dev.
func rowJS(dev string) string {
	return `[...document.querySelectorAll('#devices tbody tr[data-device]')].find(r => r.dataset.device === ` + jsString(dev) + `)`
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sendUDP sends one datagram from src and returns when it was sent.
func sendUDP(t *testing.T, src, addr, datagram string) time.Time {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(datagram)); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}
