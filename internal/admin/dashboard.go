package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The dashboard is plain HTML, CSS and JavaScript, embedded so that the
// binary needs nothing beside it and the page loads nothing from
// elsewhere: an operator's browser talks only to this listener.
//
//go:embed web
var webFS embed.FS

// asset is one embedded file, read once at start.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assetTypes fixes the content type of every kind of asset, rather than
// asking the system's MIME tables, which differ between machines and would
// let a missing entry turn a script into text/plain that browsers refuse.
var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// dashboardCSP allows the page its own scripts, styles and API calls and
// nothing else. frame-ancestors 'none' (with X-Frame-Options for older
// browsers) keeps another site from framing the page and tricking the
// operator into clicking its drain buttons, which CrossOriginProtection
// cannot see because the framed page's own requests are same-origin.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// loadAssets reads every embedded file into memory with its type and tag.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := assetTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard asset %s: no content type for %q", p, path.Ext(p))
		}
		body, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "web/")] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out, err
}

// dashboardHandlers serve index.html at / and the other assets under
// /dashboard/. The assets are compiled in, so an error loading them is a
// defect of the build (the unit tests catch it); the handlers then answer
// 500 with it rather than taking the admin API down with them.
func dashboardHandlers() (index, assets http.HandlerFunc) {
	files, loadErr := loadAssets()
	serve := func(w http.ResponseWriter, r *http.Request, name string) {
		if loadErr != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("loading the dashboard: %v", loadErr))
			return
		}
		a, ok := files[name]
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such dashboard file: %s", r.URL.Path))
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		// no-cache still lets the browser keep the file, but makes it ask
		// (and get a 304) so that an upgraded binary's page shows at once.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if a.ctype == assetTypes[".html"] {
			h.Set("Content-Security-Policy", dashboardCSP)
			h.Set("X-Frame-Options", "DENY")
		}
		if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", fmt.Sprint(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(a.body)
		}
	}
	index = func(w http.ResponseWriter, r *http.Request) { serve(w, r, "index.html") }
	assets = func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/dashboard/")
		if name == "index.html" || name == "" {
			// One address for the page keeps bookmarks and relative
			// asset paths simple.
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
			return
		}
		serve(w, r, name)
	}
	return index, assets
}
