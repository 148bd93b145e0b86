package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig is flags.ToRESTConfig, except when no kubeconfig is found
// at all. client-go then falls back to http://localhost:8080, as kubectl
// does, and the user reads "connection refused" about a server they never
// named, with a KUBECONFIG that points nowhere (a typo, a file on another
// machine) never mentioned. kup names the files it looked for instead.
func restConfig(flags *genericclioptions.ConfigFlags) (*rest.Config, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	if set(flags.KubeConfig) || set(flags.APIServer) {
		return cfg, nil // a missing --kubeconfig file is an error already
	}
	raw, rerr := flags.ToRawKubeConfigLoader().RawConfig()
	// ClusterDefaults is what client-go falls back to (localhost:8080,
	// or KUBERNETES_MASTER).
	if rerr != nil || len(raw.Clusters) > 0 || cfg.Host != clientcmd.ClusterDefaults.Server {
		return cfg, nil // a kubeconfig, or the in-cluster config
	}
	return nil, errors.New(noKubeconfig(clientcmd.NewDefaultClientConfigLoadingRules().Precedence, os.Getenv(clientcmd.RecommendedConfigPathEnvVar)))
}

// noKubeconfig says what the files searched for a kubeconfig held.
func noKubeconfig(searched []string, env string) string {
	var what []string
	for _, p := range searched {
		if _, err := os.Stat(p); err != nil {
			what = append(what, p+" does not exist")
		} else {
			what = append(what, p+" defines no cluster")
		}
	}
	if env == "" {
		return fmt.Sprintf("no kubeconfig found: %s, and %s is not set", strings.Join(what, ", "), clientcmd.RecommendedConfigPathEnvVar)
	}
	return fmt.Sprintf("no kubeconfig found: %s is %q; %s", clientcmd.RecommendedConfigPathEnvVar, env, strings.Join(what, ", "))
}

func set(s *string) bool { return s != nil && *s != "" }
