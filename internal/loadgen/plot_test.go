package loadgen_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/inletdev/inlet/internal/loadgen"
)

// svgElement is any element of the SVG, with its attributes, text and children.
type svgElement struct {
	XMLName  xml.Name
	Attrs    []xml.Attr   `xml:",any,attr"`
	Text     string       `xml:",chardata"`
	Children []svgElement `xml:",any"`
}

func (e *svgElement) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (e *svgElement) walk(fn func(*svgElement)) {
	fn(e)
	for i := range e.Children {
		e.Children[i].walk(fn)
	}
}

// decodeSVG checks that b is well-formed XML with an svg root and returns the tree.
func decodeSVG(t *testing.T, b []byte) *svgElement {
	t.Helper()
	// Well-formed throughout: every token decodes.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, b)
		}
	}
	var root svgElement
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root %v, want svg in the SVG namespace", root.XMLName)
	}
	return &root
}

func TestPlotSVG(t *testing.T) {
	var sent, stored []loadgen.Point
	for i := range 60 {
		sent = append(sent, loadgen.Point{X: float64(i + 1), Y: 340000 + float64(i%7)*1000})
		stored = append(stored, loadgen.Point{X: float64(i + 1), Y: 330000 + float64(i%5)*1000})
	}
	stored = append(stored, loadgen.Point{X: 61, Y: math.NaN()}) // left out
	p := loadgen.Plot{
		Title:  `stream <8 devices> & "60 s"`,
		XLabel: "seconds",
		YLabel: "messages/s",
		Series: []loadgen.Series{{Name: "sent", Points: sent}, {Name: "stored", Points: stored, Dashed: true}},
	}
	var buf bytes.Buffer
	if err := p.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	root := decodeSVG(t, buf.Bytes())
	var lines []*svgElement
	texts := map[string]bool{}
	root.walk(func(e *svgElement) {
		switch e.XMLName.Local {
		case "polyline":
			lines = append(lines, e)
		case "text", "title":
			texts[strings.TrimSpace(e.Text)] = true
		}
	})
	if len(lines) != 2 {
		t.Fatalf("%d polylines, want 2", len(lines))
	}
	for i, want := range []int{60, 60} {
		pts := strings.Fields(lines[i].attr("points"))
		if len(pts) != want {
			t.Errorf("polyline %d: %d points, want %d", i, len(pts), want)
		}
		for _, pt := range pts {
			if x, y, ok := strings.Cut(pt, ","); !ok || x == "" || y == "" || strings.Contains(pt, "NaN") {
				t.Errorf("polyline %d: point %q", i, pt)
			}
		}
	}
	for _, want := range []string{p.Title, "seconds", "messages/s", "sent", "stored", "0", "300k"} {
		if !texts[want] {
			t.Errorf("no text %q in the SVG (have %v)", want, texts)
		}
	}
	if strings.Contains(buf.String(), "http://") && strings.Count(buf.String(), "http://") != 1 {
		t.Error("refers to something besides the SVG namespace")
	}
}

// An empty plot is still a well-formed SVG with its axes.
func TestPlotSVGEmpty(t *testing.T) {
	var buf bytes.Buffer
	p := loadgen.Plot{Title: "nothing", Series: []loadgen.Series{{Name: "sent"}}}
	if err := p.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	root := decodeSVG(t, buf.Bytes())
	n := 0
	root.walk(func(e *svgElement) {
		if e.XMLName.Local == "polyline" {
			n++
			if e.attr("points") != "" {
				t.Errorf("points %q, want none", e.attr("points"))
			}
		}
	})
	if n != 1 {
		t.Errorf("%d polylines, want 1", n)
	}
}
