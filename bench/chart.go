package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// The chart is drawn with the standard library only: bars on a log scale
// and labels in a 3x5 pixel font, scaled up.

var glyphs = map[rune][5]string{
	'A': {"###", "#.#", "###", "#.#", "#.#"}, 'B': {"##.", "#.#", "##.", "#.#", "##."},
	'C': {"###", "#..", "#..", "#..", "###"}, 'D': {"##.", "#.#", "#.#", "#.#", "##."},
	'E': {"###", "#..", "##.", "#..", "###"}, 'F': {"###", "#..", "##.", "#..", "#.."},
	'G': {"###", "#..", "#.#", "#.#", "###"}, 'H': {"#.#", "#.#", "###", "#.#", "#.#"},
	'I': {"###", ".#.", ".#.", ".#.", "###"}, 'J': {"..#", "..#", "..#", "#.#", "###"},
	'K': {"#.#", "#.#", "##.", "#.#", "#.#"}, 'L': {"#..", "#..", "#..", "#..", "###"},
	'M': {"#.#", "###", "###", "#.#", "#.#"}, 'N': {"##.", "#.#", "#.#", "#.#", "#.#"},
	'O': {"###", "#.#", "#.#", "#.#", "###"}, 'P': {"###", "#.#", "###", "#..", "#.."},
	'Q': {"###", "#.#", "#.#", "###", "..#"}, 'R': {"##.", "#.#", "##.", "#.#", "#.#"},
	'S': {"###", "#..", "###", "..#", "###"}, 'T': {"###", ".#.", ".#.", ".#.", ".#."},
	'U': {"#.#", "#.#", "#.#", "#.#", "###"}, 'V': {"#.#", "#.#", "#.#", "#.#", ".#."},
	'W': {"#.#", "#.#", "###", "###", "#.#"}, 'X': {"#.#", "#.#", ".#.", "#.#", "#.#"},
	'Y': {"#.#", "#.#", ".#.", ".#.", ".#."}, 'Z': {"###", "..#", ".#.", "#..", "###"},
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'/': {"..#", "..#", ".#.", "#..", "#.."}, '=': {"...", "###", "...", "###", "..."},
	'.': {"...", "...", "...", "...", ".#."}, '-': {"...", "...", "###", "...", "..."},
	':': {"...", ".#.", "...", ".#.", "..."}, '(': {".#.", "#..", "#..", "#..", ".#."},
	')': {".#.", "..#", "..#", "..#", ".#."}, '_': {"...", "...", "...", "...", "###"},
	' ': {"...", "...", "...", "...", "..."},
}

const (
	scale   = 2
	glyphW  = 4 * scale // 3 pixels and a gap
	lineH   = 9 * scale
	barH    = 6 * scale
	labelW  = 44 * glyphW
	plotW   = 520
	valueW  = 10 * glyphW
	marginX = 12
	marginY = 12
	minLog  = -1.0 // 0.1x
	maxLog  = 3.0  // 1000x
)

var (
	ink      = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grid     = color.RGBA{0xcc, 0xcc, 0xcc, 0xff}
	baseline = color.RGBA{0xd0, 0x30, 0x30, 0xff}
	bar      = color.RGBA{0x3b, 0x6e, 0xb5, 0xff}
	barFast  = color.RGBA{0x3a, 0x9a, 0x50, 0xff}
)

func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['.']
		}
		for gy, row := range g {
			for gx, p := range row {
				if p != '#' {
					continue
				}
				for dy := range scale {
					for dx := range scale {
						img.Set(x+gx*scale+dx, y+gy*scale+dy, c)
					}
				}
			}
		}
		x += glyphW
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, y, c)
		}
	}
}

// logX maps a ratio to an x offset in the plot area.
func logX(ratio float64) int {
	l := math.Log10(ratio)
	l = math.Max(minLog, math.Min(maxLog, l))
	return int((l - minLog) / (maxLog - minLog) * plotW)
}

// DrawChart draws one bar per time row: infisicalfs time / baseline time on
// a log axis from 0.1x to 1000x, with the baseline (1x) marked in red.
func DrawChart(w io.Writer, rows []Row) error {
	var bars []Row
	for _, r := range rows {
		if r.Metric == "ns/op" && !math.IsNaN(r.Ratio()) && r.Ratio() > 0 {
			bars = append(bars, r)
		}
	}
	plotX := marginX + labelW
	height := marginY*2 + lineH*(len(bars)+3)
	width := plotX + plotW + valueW + marginX
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fillRect(img, img.Bounds(), color.White)
	drawText(img, marginX, marginY, "INFISICALFS TIME / BASELINE TIME (LOG SCALE, RED = 1X)", ink)
	top := marginY + lineH*2
	bottom := top + lineH*len(bars)
	for l := minLog; l <= maxLog; l++ {
		x := plotX + logX(math.Pow(10, l))
		c := grid
		if l == 0 {
			c = baseline
		}
		fillRect(img, image.Rect(x, top-scale, x+scale, bottom), c)
		drawText(img, x-glyphW, bottom+scale*2, fmt.Sprintf("%gX", math.Pow(10, l)), ink)
	}
	for i, r := range bars {
		y := top + i*lineH
		label := r.Group + " " + r.Figure
		if len(label) > labelW/glyphW-1 {
			label = label[:labelW/glyphW-1]
		}
		drawText(img, marginX, y+scale, label, ink)
		x0, x1 := plotX+logX(1), plotX+logX(r.Ratio())
		c := bar
		if x1 < x0 {
			x0, x1, c = x1, x0, barFast
		}
		fillRect(img, image.Rect(x0, y, max(x1, x0+scale), y+barH), c)
		drawText(img, plotX+plotW+glyphW, y+scale, formatRatio(r.Ratio()), ink)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	return nil
}
