package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/cmd/seekctl/jobcmd"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
)

func newRootCommand(newClient func() (client.Client, error)) *cobra.Command {
	root := &cobra.Command{Use: "seekctl", Short: "Run jobs on Seek and administer it", SilenceUsage: true, SilenceErrors: true}
	var systemNamespace, credentialsNamespace string
	root.PersistentFlags().StringVar(&systemNamespace, "system-namespace", credentials.LegacyNamespace, "Namespace Seek is installed in (the Helm release's).")
	root.PersistentFlags().StringVar(&credentialsNamespace, "credentials-namespace", credentials.DefaultNamespace, "Namespace of the API key and webhook signing Secrets.")
	keys := &cobra.Command{Use: "keys", Short: "Manage REST API keys"}
	root.AddCommand(keys, newTenantsCommand(newClient, &systemNamespace), newCredentialsCommand(newClient, &systemNamespace, &credentialsNamespace))

	var tenant, scopes string
	var rate float64
	create := &cobra.Command{
		Use:   "create",
		Short: "Mint an API key for a tenant namespace; the key is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if errs := validation.IsDNS1123Label(tenant); len(errs) > 0 {
				return fmt.Errorf("--tenant %q is not a namespace name: %s", tenant, strings.Join(errs, "; "))
			}
			parsed, err := parseScopes(scopes)
			if err != nil {
				return err
			}
			secret, key, err := apikeys.New(credentialsNamespace, tenant, parsed, rate)
			if err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.Create(cmd.Context(), secret); err != nil {
				return fmt.Errorf("store the key: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			fmt.Fprintf(cmd.ErrOrStderr(), "Created key %s for tenant %s (scopes %s). It is not stored and cannot be shown again.\n",
				apikeys.Describe(secret).ID, tenant, scopes)
			return nil
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "Tenant namespace the key acts in (required).")
	create.Flags().StringVar(&scopes, "scopes", "submit,read,cancel", "Comma-separated scopes: submit, read, cancel, webhooks.")
	create.Flags().Float64Var(&rate, "rate", apikeys.DefaultRequestsPerSecond, fmt.Sprintf("Requests per second the key may make (at most %d; a batch costs one per job).", apikeys.MaxRequestsPerSecond))
	_ = create.MarkFlagRequired("tenant")

	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			secrets := &corev1.SecretList{}
			if err := c.List(cmd.Context(), secrets, client.InNamespace(credentialsNamespace), client.MatchingLabels{apikeys.Label: "true"}); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tSCOPES\tRATE\tCREATED")
			for i := range secrets.Items {
				k := apikeys.Describe(&secrets.Items[i])
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Scopes, k.RequestsPerSecond,
					secrets.Items[i].CreationTimestamp.UTC().Format("2006-01-02T15:04:05Z"))
			}
			return tw.Flush()
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke KEY-ID",
		Short: "Revoke an API key (effective within seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			s := &corev1.Secret{}
			s.Name, s.Namespace = apikeys.SecretName(args[0]), credentialsNamespace
			if err := c.Delete(cmd.Context(), s); apierrors.IsNotFound(err) {
				return fmt.Errorf("no key %s", args[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s\n", args[0])
			return nil
		},
	}
	keys.AddCommand(create, list, revoke)

	webhooks := &cobra.Command{Use: "webhooks", Short: "Try webhook deliveries out"}
	webhooks.AddCommand(newListenCommand())
	root.AddCommand(webhooks)
	// The job commands speak the REST API with an API key; they never call newClient.
	jobcmd.AddTo(root)
	return root
}

func parseScopes(s string) ([]apikeys.Scope, error) {
	known := apikeys.Scopes
	var out []apikeys.Scope
	for _, part := range strings.Split(s, ",") {
		sc := apikeys.Scope(strings.TrimSpace(part))
		if !slices.Contains(known, sc) {
			return nil, fmt.Errorf("unknown scope %q: use submit, read or cancel", part)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}
