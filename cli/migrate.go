package cli

import "github.com/spf13/cobra"

func newMigrateCommand(_ *globals) *cobra.Command {
	return &cobra.Command{Use: "migrate-from-metallb", Short: "Translate MetalLB's configuration into Herald's", Hidden: true}
}
