package main

// A small SVG chart writer for the plot command: bar groups with whiskers,
// lines on linear or log x axes, stacked panels sharing an x axis. Plain
// SVG 1.1 text, no scripts, no external fonts; every element that shows
// data has a class (bar, line, marker) so that tests can count them.

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// palette is the series colours, in order (Okabe-Ito, readable by the
// colour-blind).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"}

func color(i int) string { return palette[i%len(palette)] }

// svgDoc accumulates the elements of one image.
type svgDoc struct {
	w, h float64
	b    strings.Builder
}

func newSVG(w, h float64, title string) *svgDoc {
	d := &svgDoc{w: w, h: h}
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&d.b, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(&d.b, `<rect x="0" y="0" width="%g" height="%g" fill="#ffffff"/>`+"\n", w, h)
	d.text(w/2, 22, "middle", "bold", 15, title)
	return d
}

func (d *svgDoc) String() string { return d.b.String() + "</svg>\n" }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (d *svgDoc) text(x, y float64, anchor, weight string, size float64, s string) {
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-weight="%s" font-size="%g">%s</text>`+"\n", x, y, anchor, weight, size, esc(s))
}

func (d *svgDoc) textRot(x, y float64, s string) {
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", x, y, x, y, esc(s))
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string, width float64, dash string) {
	extra := ""
	if dash != "" {
		extra = ` stroke-dasharray="` + dash + `"`
	}
	fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"%s/>`+"\n", x1, y1, x2, y2, stroke, width, extra)
}

// area is a plot area in image coordinates with its data ranges.
type area struct {
	x, y, w, h     float64 // left, top, width, height
	x0, x1, y0, y1 float64 // data range; for a log axis, the range of log10
	logX           bool
}

func (a *area) px(v float64) float64 {
	if a.logX {
		v = math.Log10(math.Max(v, 1e-12))
	}
	if a.x1 == a.x0 {
		return a.x + a.w/2
	}
	return a.x + (v-a.x0)/(a.x1-a.x0)*a.w
}

func (a *area) py(v float64) float64 {
	if a.y1 == a.y0 {
		return a.y + a.h
	}
	return a.y + a.h - (v-a.y0)/(a.y1-a.y0)*a.h
}

// niceTicks returns about n round tick values covering [lo, hi], and the
// range they span.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

// fmtTick formats an axis value with a k/M suffix.
func fmtTick(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// fmtMicros formats a latency tick given in microseconds.
func fmtMicros(us float64) string {
	switch {
	case us >= 1e6:
		return strconv.FormatFloat(us/1e6, 'f', -1, 64) + " s"
	case us >= 1e3:
		return strconv.FormatFloat(us/1e3, 'f', -1, 64) + " ms"
	}
	return strconv.FormatFloat(us, 'f', -1, 64) + " µs"
}

// yAxis draws horizontal grid lines and labels for linear y ticks, and
// sets the area's y range to theirs.
func (d *svgDoc) yAxis(a *area, lo, hi float64, label string, format func(float64) string) {
	ticks := niceTicks(lo, hi, 5)
	a.y0, a.y1 = ticks[0], ticks[len(ticks)-1]
	for _, t := range ticks {
		y := a.py(t)
		d.line(a.x, y, a.x+a.w, y, "#dddddd", 1, "")
		d.text(a.x-6, y+4, "end", "normal", 11, format(t))
	}
	d.line(a.x, a.y, a.x, a.y+a.h, "#333333", 1, "")
	d.textRot(a.x-52, a.y+a.h/2, label)
}

// legend draws the series names in a row under the title.
func (d *svgDoc) legend(x, y float64, names []string) {
	for i, n := range names {
		fmt.Fprintf(&d.b, `<rect class="legend" x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", x, y-10, color(i))
		d.text(x+16, y, "start", "normal", 12, n)
		x += 28 + 7*float64(len([]rune(n)))
	}
}

// barGroup is one cluster of bars on the x axis.
type barGroup struct {
	label  string
	values []float64 // one per series; NaN for none
	lo, hi []float64 // whiskers, or nil
}

// barChart draws groups of bars, one bar per series in each group, with
// optional min..max whiskers and the value over each bar: axis labels by
// format, bar labels by label.
func barChart(title, ylabel string, series []string, groups []barGroup, format, label func(float64) string) string {
	const W, H = 760.0, 420.0
	d := newSVG(W, H, title)
	d.legend(80, 46, series)
	a := &area{x: 80, y: 64, w: W - 100, h: H - 64 - 50}
	top := 0.0
	for _, g := range groups {
		for i, v := range g.values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
			if g.hi != nil && !math.IsNaN(g.hi[i]) {
				top = math.Max(top, g.hi[i])
			}
		}
	}
	d.yAxis(a, 0, top*1.08, ylabel, format)
	gw := a.w / float64(len(groups))
	bw := math.Min(60, gw*0.8/float64(max(1, len(series))))
	for gi, g := range groups {
		cx := a.x + gw*(float64(gi)+0.5)
		x := cx - bw*float64(len(series))/2
		for si, v := range g.values {
			bx := x + bw*float64(si)
			if math.IsNaN(v) {
				continue
			}
			y := a.py(v)
			fmt.Fprintf(&d.b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				bx+1, y, bw-2, a.y+a.h-y, color(si), esc(series[si]), esc(g.label), esc(label(v)))
			if g.lo != nil && !math.IsNaN(g.lo[si]) && g.hi[si] > g.lo[si] {
				mx := bx + bw/2
				d.line(mx, a.py(g.lo[si]), mx, a.py(g.hi[si]), "#222222", 1.2, "")
				d.line(mx-4, a.py(g.lo[si]), mx+4, a.py(g.lo[si]), "#222222", 1.2, "")
				d.line(mx-4, a.py(g.hi[si]), mx+4, a.py(g.hi[si]), "#222222", 1.2, "")
			}
			d.text(bx+bw/2, math.Min(y, a.py(valueOr(g.hi, si, v)))-4, "middle", "normal", 10, label(v))
		}
		d.text(cx, a.y+a.h+18, "middle", "normal", 12, g.label)
	}
	d.line(a.x, a.y+a.h, a.x+a.w, a.y+a.h, "#333333", 1, "")
	return d.String()
}

func valueOr(vs []float64, i int, def float64) float64 {
	if vs == nil || math.IsNaN(vs[i]) {
		return def
	}
	return vs[i]
}

// line is one series of points.
type line struct {
	name string
	pts  [][2]float64
}

// marker is a vertical line at x with a label.
type marker struct {
	x     float64
	label string
}

// panel is one plot area of a stacked chart: lines over a shared x axis.
type panel struct {
	ylabel string
	lines  []line
	ymax   float64 // 0: from the data
	format func(float64) string
}

// lineChart draws panels stacked over one x axis. With logX the x axis is
// log10 with a tick per decade, labelled by xfmt.
func lineChart(title, xlabel string, logX bool, xfmt func(float64) string, panels []panel, markers []marker) string {
	const W = 760.0
	ph := 260.0
	if len(panels) > 1 {
		ph = 170
	}
	H := 70 + float64(len(panels))*(ph+20) + 40
	d := newSVG(W, H, title)
	var names []string
	seen := map[string]bool{}
	for _, p := range panels {
		for _, l := range p.lines {
			if !seen[l.name] {
				seen[l.name] = true
				names = append(names, l.name)
			}
		}
	}
	colorOf := map[string]int{}
	for i, n := range names {
		colorOf[n] = i
	}
	d.legend(80, 46, names)
	// The shared x range.
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, p := range panels {
		for _, l := range p.lines {
			for _, pt := range l.pts {
				if logX && pt[0] <= 0 {
					continue
				}
				xlo, xhi = math.Min(xlo, pt[0]), math.Max(xhi, pt[0])
			}
		}
	}
	if math.IsInf(xlo, 0) {
		xlo, xhi = 0, 1
	}
	var xticks []float64
	if logX {
		lo, hi := math.Floor(math.Log10(xlo)), math.Ceil(math.Log10(xhi))
		if hi == lo {
			hi++
		}
		for e := lo; e <= hi; e++ {
			xticks = append(xticks, math.Pow(10, e))
		}
	} else {
		xticks = niceTicks(math.Min(0, xlo), xhi, 8)
	}
	for i, p := range panels {
		a := &area{x: 80, y: 64 + float64(i)*(ph+20), w: W - 110, h: ph, logX: logX}
		if logX {
			a.x0, a.x1 = math.Log10(xticks[0]), math.Log10(xticks[len(xticks)-1])
		} else {
			a.x0, a.x1 = xticks[0], xticks[len(xticks)-1]
		}
		top := p.ymax
		if top == 0 {
			for _, l := range p.lines {
				for _, pt := range l.pts {
					top = math.Max(top, pt[1])
				}
			}
			top *= 1.05
		}
		f := p.format
		if f == nil {
			f = fmtTick
		}
		d.yAxis(a, 0, math.Max(top, 1e-9), p.ylabel, f)
		for _, t := range xticks {
			x := a.px(t)
			d.line(x, a.y, x, a.y+a.h, "#eeeeee", 1, "")
			if i == len(panels)-1 {
				d.text(x, a.y+a.h+16, "middle", "normal", 11, xfmt(t))
			}
		}
		d.line(a.x, a.y+a.h, a.x+a.w, a.y+a.h, "#333333", 1, "")
		for _, l := range p.lines {
			var pts []string
			for _, pt := range l.pts {
				if logX && pt[0] <= 0 {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", a.px(pt[0]), a.py(pt[1])))
			}
			fmt.Fprintf(&d.b, `<polyline class="line" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n",
				color(colorOf[l.name]), strings.Join(pts, " "), esc(l.name))
		}
		for _, m := range markers {
			x := a.px(m.x)
			fmt.Fprintf(&d.b, `<line class="marker" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#cc0000" stroke-width="1.5" stroke-dasharray="5,4"/>`+"\n", x, a.y, x, a.y+a.h)
			if i == 0 {
				d.text(x+4, a.y+12, "start", "normal", 11, m.label)
			}
		}
	}
	d.text(80+(W-110)/2, H-10, "middle", "normal", 12, xlabel)
	return d.String()
}
