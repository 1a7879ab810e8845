package loadgen

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot is a line chart written as one self-contained SVG file (inlet bench
// --plot): axes with ticks, labels, a legend and a title, no scripts, fonts or
// files from elsewhere.
type Plot struct {
	Title  string
	XLabel string
	YLabel string
	Series []Series
}

// Series is one line of a plot.
type Series struct {
	Name   string
	Points []Point
	Dashed bool
}

// Point is one sample of a series.
type Point struct{ X, Y float64 }

// The SVG's layout, in pixels.
const (
	plotW, plotH      = 860, 480
	plotLeft, plotTop = 86, 56
	plotRight         = 24
	plotBottom        = 96 // x labels, axis title, legend
)

// plotColors are the series' colours, in order (distinguishable with the
// commonest colour blindness).
var plotColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// WriteSVG writes the plot. Points with a NaN or infinite coordinate are left out.
func (p *Plot) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range p.Series {
		for _, pt := range s.Points {
			if !finite(pt) {
				continue
			}
			xmin, xmax, ymax = math.Min(xmin, pt.X), math.Max(xmax, pt.X), math.Max(ymax, pt.Y)
		}
	}
	if math.IsInf(xmin, 1) { // no points at all
		xmin, xmax = 0, 1
	}
	xmin = math.Min(xmin, 0)
	xstep := niceStep((xmax - xmin) / 8)
	xmax = math.Max(math.Ceil(xmax/xstep)*xstep, xmin+xstep)
	ystep := niceStep(ymax / 5)
	ymax = math.Max(math.Ceil(ymax/ystep)*ystep, ystep)
	innerW := float64(plotW - plotLeft - plotRight)
	innerH := float64(plotH - plotTop - plotBottom)
	sx := func(x float64) float64 { return plotLeft + (x-xmin)/(xmax-xmin)*innerW }
	sy := func(y float64) float64 { return plotTop + innerH - y/ymax*innerH }

	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(bw, `<title>%s</title>`+"\n", esc(p.Title))
	fmt.Fprintf(bw, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", plotW, plotH)
	fmt.Fprintf(bw, `<text x="%d" y="28" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n",
		plotW/2, esc(p.Title))

	// Grid and ticks.
	fmt.Fprintln(bw, `<g stroke="#e0e0e0" stroke-width="1">`)
	for y := ystep; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", f1(sx(xmin)), f1(sy(y)), f1(sx(xmax)), f1(sy(y)))
	}
	fmt.Fprintln(bw, `</g>`)
	fmt.Fprintln(bw, `<g text-anchor="end">`)
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(bw, `<text x="%d" y="%s">%s</text>`+"\n", plotLeft-8, f1(sy(y)+4), esc(siLabel(y)))
	}
	fmt.Fprintln(bw, `</g>`)
	fmt.Fprintln(bw, `<g text-anchor="middle">`)
	for x := xmin; x <= xmax+xstep/2; x += xstep {
		fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#000000"/>`+"\n", f1(sx(x)), f1(sy(0)), f1(sx(x)), f1(sy(0)+5))
		fmt.Fprintf(bw, `<text x="%s" y="%s">%s</text>`+"\n", f1(sx(x)), f1(sy(0)+19), esc(siLabel(x)))
	}
	fmt.Fprintln(bw, `</g>`)
	// Axes and their titles.
	fmt.Fprintf(bw, `<path d="M%s %s V%s H%s" fill="none" stroke="#000000"/>`+"\n", f1(sx(xmin)), f1(float64(plotTop)), f1(sy(0)), f1(sx(xmax)))
	fmt.Fprintf(bw, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(plotLeft+innerW/2), f1(sy(0)+40), esc(p.XLabel))
	fmt.Fprintf(bw, `<text transform="translate(18 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", f1(plotTop+innerH/2), esc(p.YLabel))

	// The lines.
	for i, s := range p.Series {
		color := plotColors[i%len(plotColors)]
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts strings.Builder
		for _, pt := range s.Points {
			if !finite(pt) {
				continue
			}
			if pts.Len() > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(f1(sx(pt.X)) + "," + f1(sy(math.Max(pt.Y, 0))))
		}
		fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`+"\n",
			color, dash, pts.String(), esc(s.Name))
	}

	// The legend, in rows under the x axis title.
	lx, ly := float64(plotLeft), sy(0)+66
	for i, s := range p.Series {
		wd := 44 + 7*float64(len([]rune(s.Name)))
		if lx+wd > plotW-plotRight && lx > plotLeft {
			lx, ly = plotLeft, ly+18
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"%s/>`+"\n",
			f1(lx), f1(ly-4), f1(lx+28), f1(ly-4), plotColors[i%len(plotColors)], dash)
		fmt.Fprintf(bw, `<text x="%s" y="%s">%s</text>`+"\n", f1(lx+34), f1(ly), esc(s.Name))
		lx += wd
	}
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

func finite(p Point) bool {
	return !math.IsNaN(p.X) && !math.IsInf(p.X, 0) && !math.IsNaN(p.Y) && !math.IsInf(p.Y, 0)
}

// niceStep rounds a rough tick step up to 1, 2 or 5 times a power of ten.
func niceStep(rough float64) float64 {
	if rough <= 0 || math.IsNaN(rough) || math.IsInf(rough, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(rough)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= rough {
			return m * p
		}
	}
	return 10 * p
}

// siLabel writes a tick value shortly: 950, 1.5k, 340k, 2M.
func siLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
