package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/tenants"
)

// waitCounted bounds how long tenants create waits for the new quota to be counted.
var waitCounted = time.Minute

func newTenantsCommand(newClient func() (client.Client, error), systemNamespace *string) *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Manage tenant namespaces"}
	var maxActive int64
	var noPolicy bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant namespace (or update one): Pod Security restricted, a cap on unfinished SeekJobs, the worker NetworkPolicy",
		Long: `Create a tenant namespace, or bring an existing one up to date:

  - labels enforcing the restricted Pod Security standard on its pods;
  - the ResourceQuota ` + tenants.QuotaName + ` capping its unfinished SeekJobs at --max-active-jobs (the
    REST API answers 429 beyond it; finished jobs do not count);
  - the worker NetworkPolicy ` + tenants.NetworkPolicyName + ` as the Helm chart configures it (the ConfigMap
    ` + tenants.TemplateName + ` in --system-namespace);
  - the Role and RoleBinding ` + tenants.FrontendRoleName + ` letting the REST frontend (ServiceAccount
    ` + tenants.FrontendServiceAccount + ` of --system-namespace) read its pods and their logs, for the jobs' logs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := tenants.Tenant{Name: args[0], MaxActiveJobs: maxActive, SystemNamespace: *systemNamespace}
			if err := t.Validate(); err != nil {
				return err
			}
			if maxActive <= 0 {
				return fmt.Errorf("--max-active-jobs must be positive, got %d", maxActive)
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			if !noPolicy {
				if t.NetworkPolicy, err = tenants.LoadTemplate(cmd.Context(), c, *systemNamespace); err != nil {
					return fmt.Errorf("%w (--no-network-policy creates the tenant without one)", err)
				}
			}
			if err := tenants.Apply(cmd.Context(), c, t); err != nil {
				return err
			}
			if err := tenants.WaitCounted(cmd.Context(), c, t.Name, waitCounted); err != nil {
				return err
			}
			policy := "no worker NetworkPolicy"
			if t.NetworkPolicy != nil {
				policy = "worker NetworkPolicy " + tenants.NetworkPolicyName
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Tenant %s: Pod Security restricted, at most %d unfinished SeekJobs, %s, the frontend may read its pods' logs\n", t.Name, maxActive, policy)
			return nil
		},
	}
	create.Flags().Int64Var(&maxActive, "max-active-jobs", tenants.DefaultMaxActiveJobs, "Unfinished SeekJobs the tenant may have at once.")
	create.Flags().BoolVar(&noPolicy, "no-network-policy", false, "Give the tenant no worker NetworkPolicy (the chart's template is not read).")
	cmd.AddCommand(create)
	return cmd
}

func newCredentialsCommand(newClient func() (client.Client, error), systemNamespace, credentialsNamespace *string) *cobra.Command {
	cmd := &cobra.Command{Use: "credentials", Short: "Manage where API keys and signing secrets are kept"}
	var from string
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Move API key and webhook signing Secrets of an older release into the credentials namespace",
		Long: `Move the API key and webhook signing Secrets that releases before the credentials namespace kept in
their own namespace (--from, default --system-namespace) into --credentials-namespace: each is copied,
then its original deleted. Run it right after upgrading the chart, which creates the credentials
namespace; until then, keys made before the upgrade are refused. Running it again moves nothing more.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				from = *systemNamespace
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			moved, err := credentials.Migrate(cmd.Context(), c, from, *credentialsNamespace)
			for _, m := range moved {
				note := ""
				if m.Replaced {
					note = " (replaced the one made after the upgrade)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Moved %s %s/%s to %s%s\n", kind(m.Label), from, m.Name, *credentialsNamespace, note)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d Secrets moved from %s to %s\n", len(moved), from, *credentialsNamespace)
			return nil
		},
	}
	migrate.Flags().StringVar(&from, "from", "", "Namespace the credentials are in now (default: --system-namespace).")
	cmd.AddCommand(migrate)
	return cmd
}

func kind(label string) string {
	if label == apikeys.Label {
		return "API key"
	}
	return "signing secret"
}
