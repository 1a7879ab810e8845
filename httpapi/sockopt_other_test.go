//go:build !unix

package httpapi_test

// setRecvBuffer leaves the default receive buffer where there is no portable
// way to set it; the tests that use it only need a client that stalls.
func setRecvBuffer(fd uintptr, n int) error { return nil }
