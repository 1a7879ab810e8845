//go:build linux

package sockopt

import (
	"net"
	"testing"
	"time"
)

func TestParseProcUDP(t *testing.T) {
	table := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
13951: 0100007F:0F51 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22574544 2 000000006adbeece 0
13952: 00000000:0BB9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22574545 2 000000006adbeecf 4711
`)
	if d, ok := parseProcUDP(table, "22574545"); !ok || d != 4711 {
		t.Errorf("drops = %d, %v; want 4711", d, ok)
	}
	if _, ok := parseProcUDP(table, "1"); ok {
		t.Error("found a socket that is not there")
	}
}

// A real socket with a tiny buffer: the drops read from /proc match what was
// sent and not read, with no datagram read after the burst.
func TestUDPDropsFromProc(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4096)
	ino, ok := Inode(c)
	if !ok {
		t.Skip("no socket inode")
	}
	if _, ok := UDPDrops(ino); !ok {
		t.Skip("no /proc/net/udp here")
	}
	s, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sent = 2000
	for range sent {
		s.Write(make([]byte, 10))
	}
	read := 0
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			break
		}
		read++
	}
	d, _ := UDPDrops(ino)
	if read+int(d) != sent || d == 0 {
		t.Errorf("read %d + drops %d != sent %d (or nothing dropped)", read, d, sent)
	}
}
