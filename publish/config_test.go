package publish

import (
	"strings"
	"testing"
)

func TestParseURLs(t *testing.T) {
	hosts, err := ParseURLs("nats://a:4222, tls://user:secret@b:4443,nats://c:4222/")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(hosts, ","); got != "nats://a:4222,tls://b:4443,nats://c:4222" {
		t.Errorf("hosts %s: want them without credentials", got)
	}
	for _, bad := range []string{"", " , ", "a:4222", "http://a:4222", "nats://", "nats://a:4222/x", "nats://user:secret@/x"} {
		_, err := ParseURLs(bad)
		if err == nil {
			t.Errorf("ParseURLs(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURLs(%q): the error shows the password: %v", bad, err)
		}
	}
}
