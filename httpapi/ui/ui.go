// Package ui owns the dashboard's files, embedded in the binary so that inlet
// serve needs nothing on disk and the browser makes no request outside the
// server: plain HTML, CSS and JavaScript with no build step, and a vendored
// copy of uPlot for the charts. It knows nothing about the API's handlers;
// httpapi serves Files under /assets/ and index.html at /.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files is the dashboard: index.html, login.html, app.js, app.css and
// vendor/, rooted at the static directory.
var Files fs.FS

func init() {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	Files = sub
}
