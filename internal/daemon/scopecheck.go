package daemon

import (
	"fmt"
	"strings"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/internal/tree"
)

// checkScopes fails a start whose --project or --env filter matched
// nothing: such a mount was an empty tree that exited 0, with a message
// blaming the identity (or none at all for a wrong env). Templates bring
// their own scopes, so a mount with templates is not checked here.
func checkScopes(cfg config.Config, projects []tree.Project) error {
	if len(cfg.Projects) > 0 && len(projects) == 0 {
		return fmt.Errorf("no project matches --project %s: none exists under that slug or id, or the identity may not read it; check the name, or grant the identity a role on the project in Access Control",
			strings.Join(cfg.Projects, ", --project "))
	}
	if len(cfg.Envs) == 0 || len(projects) == 0 {
		return nil
	}
	for _, p := range projects {
		if len(p.Envs) > 0 {
			return nil
		}
	}
	dirs := make([]string, len(projects))
	for i, p := range projects {
		dirs[i] = p.Dir
	}
	return fmt.Errorf("no environment matches --env %s in %s; environments are named by their slug (dev, staging, prod, ...)",
		strings.Join(cfg.Envs, ", --env "), strings.Join(dirs, ", "))
}
