// Package client is the Go device client for inlet's acknowledged protocol
// (INLET/1, docs/protocol.md): a Sender that keeps every message in an outbox until
// the server has acknowledged it as durable, resends what was not acknowledged
// after a reconnect, and reconnects with jittered exponential back-off. It runs on
// anything with Go, such as a gateway or a Raspberry Pi, over TCP or UDP.
//
// It owns the device side of the protocol only and never talks plain mode. It
// imports nothing from the server but package wire, where the INLET/1 grammar
// lives (standard library only), so it stays light enough for a gateway.
//
// # Delivery
//
// Send gives every message the next seq of this process's boot (1, 2, 3, ...) and
// returns once the message is in the outbox. A background goroutine connects,
// says hello (`INLET/1 id=<device> boot=<boot>`), drops the messages the server
// reports as already stored (`OK last=<n>`), then pipelines up to Config.Window
// messages and removes each one when an ACK covers it. A message the server
// rejects (`ERR <seq> too-long|bad-seq`) is dropped, logged and counted in
// Stats.Errors: resending it could never succeed. Anything else (no ACK within
// Config.AckTimeout, a closed connection, a line the client does not understand)
// ends the connection; the unacknowledged messages are sent again on the next
// one, with their original boot and seq, so the server stores each only once.
//
// Over UDP every message is its own datagram, resent on a per-message timer
// (200 ms doubling to Config.AckTimeout, jittered) until its ACK arrives, with at
// most Config.Window unacknowledged at once. Messages of an earlier boot (left in
// the outbox by an earlier process) are sent first, on their own connection or
// socket, because a hello and a UDP ACK each name one boot.
//
// # The outbox
//
// With Config.Outbox set, the outbox is the file outbox.log in that directory
// (plus a lock file, so two processes cannot share it). It is an append-only log:
// after the 8-byte magic "INLETOB1" come records, each
//
//	length uint32 LE | CRC-32C of body uint32 LE | body
//
// where body is one kind byte and its fields (integers uint64 LE, boot prefixed by
// its length in one byte):
//
//	'D' device                  whose outbox this is; New refuses another device
//	'M' boot seq payload        a message handed to Send
//	'A' boot lo hi              messages lo..hi of boot are acknowledged (or dropped)
//	'S' boot seq                the highest seq used for boot, kept across compaction
//
// Send appends an 'M' record and returns only after fsync; concurrent Sends
// share one fsync. Acknowledgements append 'A' records without fsync: if they are
// lost in a crash, the messages are simply resent and the server de-duplicates
// them. On open the log is replayed; the first record that is short or fails its
// CRC ends it, and the file is truncated there (a crash can only tear the tail,
// which holds nothing any Send returned for). When the acknowledged records
// outweigh the live ones and exceed 1 MiB, the live records are rewritten to a
// temporary file, which is fsynced and renamed over the log, and the directory
// is fsynced.
//
// Without Config.Outbox the outbox lives in memory: messages survive reconnects
// and server restarts but not the end of the process.
//
// Messages reloaded from the outbox keep their original boot and seq. New ones
// use the new process's boot; with a fixed Config.Boot, numbering continues after
// the highest seq that boot ever used.
package client
