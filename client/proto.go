package client

import (
	"errors"
	"fmt"

	"github.com/inletdev/inlet/wire"
)

// The grammar of INLET/1 is package wire's; this file only ties it to the
// client's errors.

// errProtocol marks a server line the client does not understand, or one that
// does not fit the exchange; the connection is dropped and retried.
var errProtocol = errors.New("protocol error")

// parseAnswer parses one line or datagram from the server.
func parseAnswer(raw []byte) (wire.Answer, error) {
	a, err := wire.ParseAnswer(raw)
	if err != nil {
		return a, fmt.Errorf("%w: %w", errProtocol, err)
	}
	return a, nil
}
