package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/infisicalfs/infisicalfs/agentconfig"
	"github.com/infisicalfs/infisicalfs/config"
)

// agentSettings reads the agent config cfg names (--agent-config, or
// $INFISICAL_AGENT_CONFIG_BASE64, whose relative paths are taken from the
// working directory); nil when there is none.
func agentSettings(cfg config.Config) (*agentconfig.Settings, error) {
	switch {
	case cfg.AgentConfig != "":
		return agentconfig.Load(cfg.AgentConfig)
	case cfg.AgentConfigBase64 != "":
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("agent config: %w", err)
		}
		return agentconfig.LoadBase64(cfg.AgentConfigBase64, wd)
	}
	return nil, nil
}

// withAgent puts the agent config's settings in the place of the same
// keys of cfg: address, auth, templates, refresh interval. A client secret
// file the agent removes once read (remove_client_secret_on_read) is
// removed here too, after reading; keptSecret is the secret read then, for
// the reloads that follow, which find the file gone.
func withAgent(cfg config.Config, as *agentconfig.Settings, keptSecret string) (config.Config, string, error) {
	as.Apply(&cfg)
	cfg.AuthMethod = as.AuthMethod
	if as.AuthMethod == agentconfig.AuthKubernetes {
		cfg.IdentityID = as.IdentityID
		if as.IdentityID == "" && as.IdentityIDFile != "" {
			id, err := config.ReadCredentialFile(as.IdentityIDFile)
			if err != nil {
				return cfg, "", fmt.Errorf("agent config: identity id: %w", err)
			}
			cfg.IdentityID = id
		}
		cfg.KubernetesTokenPath = as.KubernetesTokenPath
	}
	if as.RemoveClientSecretOnRead && cfg.ClientSecretFile != "" {
		if _, err := os.Stat(cfg.ClientSecretFile); errors.Is(err, os.ErrNotExist) && keptSecret != "" {
			cfg.ClientSecretFile, cfg.ClientSecret = "", keptSecret
		}
	}
	if err := cfg.ReadCredentials(); err != nil {
		return cfg, "", fmt.Errorf("agent config: %w", err)
	}
	if as.RemoveClientSecretOnRead && cfg.ClientSecretFile != "" {
		if err := os.Remove(cfg.ClientSecretFile); err != nil {
			return cfg, "", fmt.Errorf("agent config: remove_client_secret_on_read: %w", err)
		}
		cfg.ClientSecretFile = ""
	}
	return cfg, cfg.ClientSecret, nil
}
