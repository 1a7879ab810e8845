package httpapi

// SetRingBounds makes the stream feed's ring hold at most rows events and
// bytes of events (for rings started after the call) until restore is called.
func SetRingBounds(rows, bytes int) (restore func()) {
	r, b := ringRows, ringBytes
	ringRows, ringBytes = rows, bytes
	return func() { ringRows, ringBytes = r, b }
}
