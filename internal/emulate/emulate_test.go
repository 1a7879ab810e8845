package emulate

import (
	"regexp"
	"testing"
)

func TestSourceAddr(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.0.10", 1: "127.0.0.11", 245: "127.0.0.255", 246: "127.0.1.0", 9999: "127.0.39.25"} {
		if got := SourceAddr(i).String(); got != want {
			t.Errorf("SourceAddr(%d) = %s, want %s", i, got, want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:3000": true, "localhost:3000": true, "127.9.9.9:1": true,
		"[::1]:3000": false, "192.168.4.2:3000": false, "127.0.0.1": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTemplate(t *testing.T) {
	r := &Fleet{template: parseTemplate("t={rand},n={n},r={randint},{x}{")}
	re := regexp.MustCompile(`^t=[0-9]{1,3}\.[0-9]{2},n=42,r=[0-9]{1,4},\{x\}\{$`)
	for range 100 {
		if got := string(r.payload(42)); !re.MatchString(got) {
			t.Fatalf("payload %q does not match %s", got, re)
		}
	}
	if got := string((&Fleet{}).payload(7)); got != "7" {
		t.Errorf("no template: %q", got)
	}
}
