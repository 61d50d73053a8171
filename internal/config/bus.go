package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/clawea/clawea/internal/connector/servicebus"
)

// buildBus connects a real Service Bus namespace: by connection string
// (from the environment variable connection_string_env), or by fully
// qualified namespace and the gateway's Azure identity. Policies and tool
// calls name it by its configured name (sb://<name>/<entity>).
func buildBus(ns Namespace) (servicebus.Bus, error) {
	b, err := connectBus(ns)
	if err != nil {
		return nil, err
	}
	return servicebus.Named(b, ns.Name), nil
}

func connectBus(ns Namespace) (servicebus.Bus, error) {
	switch {
	case ns.ConnectionStringEnv != "":
		cs := os.Getenv(ns.ConnectionStringEnv)
		if cs == "" {
			return nil, errors.New("environment variable " + ns.ConnectionStringEnv + " is empty")
		}
		if wide, key := servicebus.NamespaceLevelSAS(cs); wide && !ns.AllowNamespaceSAS {
			return nil, fmt.Errorf("%s holds a namespace-level shared access key or signature (key name %q, no EntityPath), which reaches every entity of the namespace; use a key scoped to one entity, Entra ID (fully_qualified_namespace with credential), or set allow_namespace_sas: true for this namespace (code NAMESPACE_SAS_REFUSED)", ns.ConnectionStringEnv, key)
		}
		return servicebus.NewAzure(ns.FullyQualified, servicebus.AzureOptions{ConnectionString: cs})
	case ns.FullyQualified != "":
		cred, err := ns.Credential.build()
		if err != nil {
			return nil, err
		}
		return servicebus.NewAzure(ns.FullyQualified, servicebus.AzureOptions{Credential: cred})
	}
	return nil, errors.New("give local, connection_string_env, or fully_qualified_namespace (with credential)")
}
