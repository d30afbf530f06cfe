package live

import "embed"

// static holds the page: plain HTML, CSS and JavaScript drawing on canvas,
// served from the binary; nothing is fetched from elsewhere.
//
//go:embed static
var static embed.FS
