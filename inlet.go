// Package inlet holds the domain of the inlet server: the Message that flows from
// the listeners to the store, the per-device loss accounting (Device, CounterRun,
// and whether a plain device's lone integers are a counter at all),
// the rejection reasons every layer counts by, the Store interface that the
// storage adapters implement and the device Token they keep. It imports nothing
// but the standard library, so every other package can depend on it and it
// depends on none of them.
package inlet

import (
	"context"
	"errors"
	"net/netip"
)

// Transport is the network a message arrived on.
type Transport uint8

const (
	TCP Transport = iota + 1
	UDP
)

// String returns "tcp" or "udp", the spelling used in the schema and the exports.
func (t Transport) String() string {
	switch t {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "unknown"
}

// Message is one accepted reading on its way to the store. Payload is owned by the
// message: a listener copies the bytes out of its read buffer before handing it over.
type Message struct {
	ReceivedAt int64 // unix nanoseconds, stamped when the message enters the commit queue
	Device     string
	Transport  Transport
	Remote     netip.AddrPort
	Boot       string // acknowledged mode only
	Seq        int64  // acknowledged mode only; 0 means none
	Payload    []byte
	Ack        Acker // acknowledged mode: told once the message is durable

	// Derived from Payload by the commit writer before the message is queued.
	Fields    []byte // JSON object text; nil when nothing is derived
	Counter   int64  // the payload's value when it is a lone integer
	IsCounter bool
}

// Reason names why input was rejected or cut; it is the label of the rejection
// counters and appears in logs.
type Reason string

const (
	ReasonTooLong   Reason = "too_long"   // a message longer than --max-message
	ReasonTruncated Reason = "truncated"  // a partial tail lost to a reset or an idle timeout
	ReasonRefused   Reason = "refused"    // a connection over --max-conns or --max-conns-per-ip
	ReasonQueueFull Reason = "queue_full" // a UDP datagram dropped because the writer was full
	// ReasonRateLimited: a message over --max-msg-rate, dropped (an INLET/1
	// connection closes unacknowledged past it), or a hello refused busy for it.
	ReasonRateLimited Reason = "rate_limited"
)

// Reasons lists every Reason, for metrics that must show zeros too.
var Reasons = []Reason{ReasonTooLong, ReasonTruncated, ReasonRefused, ReasonQueueFull, ReasonRateLimited}

// ErrClosed is returned by a Store or writer used after Close.
var ErrClosed = errors.New("inlet: closed")

// Batch is what the commit writer hands to a Store in one transaction: the messages
// in the order they are to be inserted, and the new state of every device they touched.
type Batch struct {
	Messages []Message
	Devices  []Device
	Boots    []Boot
}

// Store is durable storage for messages and device state. Commit must write the
// whole batch in one transaction and return only once it is synced to disk; it
// may reorder b.Messages (keeping each device's messages in order), and may
// drop from it acknowledged messages it already holds (a resend the writer's
// memory could not recognise), which are then acknowledged and not stored again.
type Store interface {
	Commit(ctx context.Context, b *Batch) error
	// Devices returns the persisted state of every device, for the writer to
	// continue loss accounting after a restart.
	Devices(ctx context.Context) ([]Device, error)
	// Boot returns the persisted state of one acknowledged-mode sequence, and
	// whether there is one. The writer keeps only recent sequences in memory
	// and reads older ones back with it.
	Boot(ctx context.Context, device, boot string) (Boot, bool, error)
	Close() error
}

// Stored is a message as read back from a store, with its id (insertion order).
type Stored struct {
	ID int64
	Message
}

// Query selects stored messages: every field is optional (zero means no bound).
type Query struct {
	Device  string
	Since   int64 // unix nanoseconds, inclusive
	Until   int64 // unix nanoseconds, exclusive
	AfterID int64
	Limit   int
	// Last, with Limit, selects the newest Limit matching messages instead of
	// the oldest; they are still delivered in id order.
	Last bool
}

// Reader reads what a store has committed. Its methods are safe to call while a
// writer commits, and see only committed transactions.
type Reader interface {
	// Messages calls fn for each message matching q, in id order, streaming.
	// fn must not keep the *Stored or its slices after returning.
	Messages(ctx context.Context, q Query, fn func(*Stored) error) error
	Devices(ctx context.Context) ([]Device, error)
	Boots(ctx context.Context) ([]Boot, error)
	// RecentBoots returns every device's limit most recently seen boots
	// (oldest first) and each device's number of boots in all.
	RecentBoots(ctx context.Context, limit int) ([]Boot, map[string]int64, error)
	// DeviceBoots returns every boot of one device.
	DeviceBoots(ctx context.Context, device string) ([]Boot, error)
	// LastID returns the highest message id stored, 0 when there is none.
	LastID(ctx context.Context) (int64, error)
	// Latest returns the newest message of every device.
	Latest(ctx context.Context) ([]Stored, error)
}
