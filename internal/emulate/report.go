package emulate

import "time"

// DeviceReport is one device in the summary.
type DeviceReport struct {
	Device  string `json:"device"`
	Sent    int64  `json:"sent"`
	Acked   *int64 `json:"acked,omitempty"`
	Retried int64  `json:"retried"`
	Errors  int64  `json:"errors"`
	Pending *int64 `json:"pending,omitempty"`
}

// Report is the summary of inlet send (--json prints it).
type Report struct {
	Mode      string         `json:"mode"`
	Ack       bool           `json:"ack"`
	Addr      string         `json:"addr"`
	DurationS float64        `json:"duration_s"`
	Sent      int64          `json:"sent"`
	Acked     *int64         `json:"acked,omitempty"`
	Retried   int64          `json:"retried"`
	Errors    int64          `json:"errors"`
	Pending   *int64         `json:"pending,omitempty"`
	OK        bool           `json:"ok"`
	Devices   []DeviceReport `json:"devices"`

	Unsent  int64 `json:"-"`
	Unacked int64 `json:"-"`
}

// Totals adds up the devices' counts: sent, acked, retried, errors, pending.
func (r *Fleet) Totals() (sent, acked, retried, errs, pending int64) {
	for _, d := range r.devices {
		dr := r.deviceReport(d)
		sent += dr.Sent
		retried += dr.Retried
		errs += dr.Errors
		if dr.Acked != nil {
			acked += *dr.Acked
			pending += *dr.Pending
		}
	}
	return
}

func (r *Fleet) deviceReport(d *device) DeviceReport {
	if d.sender == nil {
		return DeviceReport{Device: d.name, Sent: d.sent.Load(), Retried: d.retried.Load(), Errors: d.errors.Load()}
	}
	st := d.sender.Stats()
	// A retry is any attempt made again after a failure: a connection after a
	// failed one (the readings waited for it, as the tutorial's 2 s retry of a
	// failed connect), and a reading transmitted again.
	return DeviceReport{Device: d.name, Sent: st.Sent, Acked: &st.Acked, Retried: st.Retried + st.Reconnects,
		Errors: st.Errors + d.rejected.Load(), Pending: &st.Pending}
}

func (r *Fleet) Summary() Report {
	rep := Report{Mode: r.cfg.Mode, Ack: r.cfg.Ack, Addr: r.cfg.Addr, DurationS: time.Since(r.start).Seconds()}
	for _, d := range r.devices {
		dr := r.deviceReport(d)
		rep.Devices = append(rep.Devices, dr)
		rep.Sent += dr.Sent
		rep.Retried += dr.Retried
		rep.Errors += dr.Errors
		if d.unsent.Load() {
			rep.Unsent++
		}
		if dr.Acked != nil {
			if rep.Acked == nil {
				rep.Acked, rep.Pending = new(int64), new(int64)
			}
			*rep.Acked += *dr.Acked
			*rep.Pending += *dr.Pending
			rep.Unacked += *dr.Pending
		}
	}
	rep.Unacked += rep.Unsent
	rep.OK = rep.Errors == 0 && rep.Unsent == 0 && rep.Unacked == 0
	return rep
}
