package infisical

import (
	"errors"
	"sync/atomic"
)

// legacyRoutes remembers, for the life of a client (one daemon holds one
// client per site), which older routes the server needs. Each flag flips
// once, false to true, the first time a current route answers Fastify's
// route-not-found 404: older self-hosted Infisical has no /api/v2/folders
// (only /api/v1/folders with workspaceId and directory) and no
// /api/v1/projects (only /api/v1/workspace). A current server never
// flips them and so never sees an extra request.
type legacyRoutes struct {
	folders  atomic.Bool
	projects atomic.Bool
}

// useLegacy reports whether err says the server lacks route, and if so
// switches flag on, logging the switch once.
func (c *Client) useLegacy(flag *atomic.Bool, err error, route, legacy string) bool {
	var ae *APIError
	if !errors.As(err, &ae) || !ae.routeMissing {
		return false
	}
	if flag.CompareAndSwap(false, true) {
		c.log.Info("infisical: the server has no "+route+" route (an older self-hosted Infisical); using "+legacy+" from now on",
			"site", c.site)
	}
	return true
}
