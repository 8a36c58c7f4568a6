package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The web console is a page, a script and a style sheet, embedded in the
// binary and served at /admin/ with the admin API's security headers. It
// holds no key until one is typed into it; every request it makes goes
// through the admin API and its guard.

//go:embed console
var consoleFiles embed.FS

// handleConsole serves the web console's files at /admin/.
func handleConsole() http.Handler {
	files, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fileServer := http.StripPrefix("/admin/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setAdminHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
