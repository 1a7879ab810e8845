package main

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A maker's first question is where to point the device: the tutorial makes the
// ESP8266 an access point and has the computer join it, and the computer's
// address on that network (192.168.4.x) is not something they know. inlet serve
// says it at start, one line per address.

// hostAddr is one address of this machine that a device on the network may use.
type hostAddr struct {
	IP    netip.Addr
	Iface string
}

// reachableHosts lists the addresses of this machine's interfaces that are up,
// other than loopback and link-local ones (a device cannot be pointed at those
// usefully), in the order the system gives them.
func reachableHosts() []hostAddr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []hostAddr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			out = append(out, hostAddr{IP: ip, Iface: ifc.Name})
		}
	}
	return out
}

// listener is one bound device listener, for reachLines.
type listener struct {
	proto string // "tcp" or "udp"
	addr  string // as bound: "[::]:3000", "0.0.0.0:3001", "127.0.0.1:40000"
}

// reaches reports whether a listener bound at addr takes traffic sent to ip.
func reaches(addr string, ip netip.Addr) (port string, ok bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", false
	}
	port = strconv.Itoa(int(ap.Port()))
	bound := ap.Addr().Unmap()
	switch {
	case bound.IsUnspecified() && bound.Is6():
		return port, true // dual stack: every address
	case bound.IsUnspecified():
		return port, ip.Is4()
	default:
		return port, bound == ip.WithZone(bound.Zone())
	}
}

// reachLine is what a human reads at start for one address of this machine:
// "devices can reach me at 192.168.4.2:3000 (tcp), :3001 (udp)", or "" when no
// listener takes traffic on that address.
func reachLine(h netip.Addr, ls []listener) string {
	var parts []string
	for _, l := range ls {
		port, ok := reaches(l.addr, h)
		if !ok {
			continue
		}
		if len(parts) == 0 {
			parts = append(parts, net.JoinHostPort(h.String(), port)+" ("+l.proto+")")
		} else {
			parts = append(parts, ":"+port+" ("+l.proto+")")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "devices can reach me at " + strings.Join(parts, ", ")
}

// deviceListeners are the bound device listeners of ri.
func deviceListeners(ri ReadyInfo) []listener {
	var ls []listener
	if ri.TCP != "" {
		ls = append(ls, listener{"tcp", ri.TCP})
	}
	if ri.UDP != "" {
		ls = append(ls, listener{"udp", ri.UDP})
	}
	return ls
}

// hostIPs are the addresses of this machine that devices can reach, for the
// dashboard and the ready line.
func (m *Main) hostIPs() []string {
	ls := deviceListeners(m.boundInfo())
	var out []string
	for _, h := range m.hosts {
		if reachLine(h.IP, ls) != "" && !slices.Contains(out, h.IP.String()) {
			out = append(out, h.IP.String())
		}
	}
	return out
}

// dashboardURL is the address a browser on this machine opens, "" without HTTP.
func dashboardURL(httpAddr string) string {
	ap, err := netip.ParseAddrPort(httpAddr)
	if err != nil {
		return ""
	}
	host := ap.Addr().Unmap()
	if host.IsUnspecified() {
		host = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return "http://" + netip.AddrPortFrom(host.WithZone(""), ap.Port()).String() + "/"
}

// logReach tells a human where to point devices and where the dashboard is.
func (m *Main) logReach(ri ReadyInfo) {
	ls := deviceListeners(ri)
	if len(ls) > 0 {
		n := 0
		for _, h := range m.hosts {
			if line := reachLine(h.IP, ls); line != "" {
				m.Logger.Info(line, "interface", h.Iface)
				n++
			}
		}
		if n == 0 {
			if len(m.hosts) == 0 {
				m.Logger.Info("devices cannot reach me yet: no network interface other than loopback is up; " +
					"join the devices' network (or the device's access point), then restart inlet serve to see the address")
			} else {
				m.Logger.Info("devices on the network cannot reach me: the device listeners are bound to loopback only; " +
					"listen on every interface with --tcp :3000 --udp :3001")
			}
		}
	}
	if ri.Dashboard != "" {
		m.Logger.Info("dashboard at " + ri.Dashboard)
	}
}
