package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// DefaultAuthFailures is how many failed authentications (a wrong Bearer token,
// session cookie or sign-in) one IP address may make in a minute before it is
// answered 429 until the minute is over (Config.AuthFailures).
const DefaultAuthFailures = 10

// maxTracked bounds the addresses the limiter remembers; past it, the ones whose
// minute is over are forgotten, and if that is not enough, all of them.
const maxTracked = 16384

// failLimit counts failed authentications per client IP over a fixed window, so
// guessing the token, by the API or by the sign-in form, slows to a few tries a
// minute per address while nobody else waits.
type failLimit struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu  sync.Mutex
	ips map[netip.Addr]*failWindow
}

type failWindow struct {
	n     int
	start time.Time
}

func newFailLimit(max int) *failLimit {
	return &failLimit{max: max, window: time.Minute, now: time.Now, ips: make(map[netip.Addr]*failWindow)}
}

func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// blocked reports whether ip has used its failures for this window, and for how
// much longer.
func (l *failLimit) blocked(ip netip.Addr) (bool, time.Duration) {
	if l == nil || l.max < 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.ips[ip]
	if w == nil {
		return false, 0
	}
	left := l.window - l.now().Sub(w.start)
	if left <= 0 {
		delete(l.ips, ip)
		return false, 0
	}
	return w.n >= l.max, left
}

// fail records a failed authentication from ip.
func (l *failLimit) fail(ip netip.Addr) {
	if l == nil || l.max < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.ips[ip]
	if w == nil || now.Sub(w.start) >= l.window {
		if len(l.ips) >= maxTracked {
			for k, v := range l.ips {
				if now.Sub(v.start) >= l.window {
					delete(l.ips, k)
				}
			}
			if len(l.ips) >= maxTracked {
				clear(l.ips)
			}
		}
		w = &failWindow{start: now}
		l.ips[ip] = w
	}
	w.n++
}

// tooMany answers a blocked client.
func tooMany(w http.ResponseWriter, left time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(left.Seconds())+1))
	writeError(w, http.StatusTooManyRequests, "too many failed sign-ins or wrong tokens from this address: try again in a minute")
}
