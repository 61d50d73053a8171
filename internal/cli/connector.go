package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/toolgw"
)

func newConnectorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connector deny|allow NAME | connector status",
		Short: "Refuse or allow every tool of one connector (admin; every change is recorded)",
		Long: `A denied connector's tools are refused with CONNECTOR_DENIED, reads included,
by every tool gateway sharing the store within a quarter of a second; the other
connectors go on. Each change is kept in the connector log with who (the admin
credential), when and why, and each refused call leaves a receipt in its job.

NAME is keyvault, servicebus, or mcp:<server> for one upstream MCP server.
For refusing every write of every connector at once, see clawea lockdown.

  clawea connector deny keyvault --reason "incident 42"
  clawea connector deny mcp:filesystem --reason "suspected exfiltration"
  clawea connector allow keyvault --reason "resolved"
  clawea connector status`,
	}
	shorts := map[string]string{
		"deny":   "Refuse every tool of the connector NAME (--reason required)",
		"allow":  "Allow the connector NAME again (--reason required)",
		"status": "Show the denied connectors and the recent changes",
	}
	for _, sub := range []string{"deny", "allow", "status"} {
		var f serverFlags
		var reason string
		c := &cobra.Command{
			Use:   sub + " NAME",
			Short: shorts[sub],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var out struct {
					Connectors []string         `json:"connectors"`
					Denied     []map[string]any `json:"denied"`
					Log        []map[string]any `json:"log"`
					Current    map[string]any   `json:"current"`
					Configured bool             `json:"configured_here"`
				}
				var raw []byte
				var err error
				if sub == "status" {
					_, raw, err = f.adminCall(cmd.Context(), "GET", "/v1/connectors", nil, &out)
				} else {
					name, cerr := toolgw.CanonicalConnector(args[0])
					if cerr != nil {
						return withCode(ExitUsage, cerr)
					}
					if strings.TrimSpace(reason) == "" {
						return withCode(ExitUsage, errors.New("--reason is required: it is recorded"))
					}
					_, raw, err = f.adminCall(cmd.Context(), "POST", "/v1/connectors/"+url.PathEscape(name)+"/"+sub, map[string]any{"reason": reason}, &out)
				}
				if err != nil {
					return failCode(err)
				}
				if f.json {
					e.out.Write(raw)
					return nil
				}
				if sub != "status" {
					fmt.Fprintf(e.out, "connector %v %v by %v (#%v): %v\n", out.Current["connector"], out.Current["state"], out.Current["by"], out.Current["seq"], out.Current["reason"])
					if !out.Configured {
						fmt.Fprintf(e.out, "  note: this server has no connector of that name; the switch is stored for every gateway sharing the store\n")
					}
					return nil
				}
				fmt.Fprintf(e.out, "connectors here: %s\n", strings.Join(out.Connectors, ", "))
				if len(out.Denied) == 0 {
					fmt.Fprintln(e.out, "denied: none")
				}
				for _, d := range out.Denied {
					fmt.Fprintf(e.out, "DENIED %v since %v by %v: %v\n", d["connector"], d["at"], d["by"], d["reason"])
				}
				for _, l := range out.Log {
					fmt.Fprintf(e.out, "  #%v %v %v %v by %v: %v\n", l["seq"], l["at"], l["connector"], l["state"], l["by"], l["reason"])
				}
				return nil
			},
		}
		if sub == "status" {
			c.Use, c.Args = "status", cobra.NoArgs
		}
		f.add(c)
		if sub != "status" {
			c.Flags().StringVar(&reason, "reason", "", "why (recorded)")
		}
		cmd.AddCommand(c)
	}
	return cmd
}
