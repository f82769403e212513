package config

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestServiceAllocationSelects(t *testing.T) {
	sel := func(l map[string]string) labels.Selector {
		s, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: l})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	web := map[string]string{"tier": "web"}
	team := map[string]string{"team": "a"}
	for _, tc := range []struct {
		name            string
		sa              *ServiceAllocation
		ns              string
		nsLabels, svcLb map[string]string
		want            bool
	}{
		{name: "no allocation", ns: "x", want: true},
		{name: "priority only", sa: &ServiceAllocation{Priority: 2}, ns: "x", want: true},
		{name: "namespace listed", sa: &ServiceAllocation{Namespaces: []string{"x"}}, ns: "x", want: true},
		{name: "namespace not listed", sa: &ServiceAllocation{Namespaces: []string{"y"}}, ns: "x"},
		{name: "namespace selected by label", sa: &ServiceAllocation{Namespaces: []string{"y"}, NamespaceSelectors: []labels.Selector{sel(team)}}, ns: "x", nsLabels: team, want: true},
		{name: "namespace label missing", sa: &ServiceAllocation{NamespaceSelectors: []labels.Selector{sel(team)}}, ns: "x"},
		{name: "Service selected", sa: &ServiceAllocation{ServiceSelectors: []labels.Selector{sel(web)}}, ns: "x", svcLb: web, want: true},
		{name: "Service not selected", sa: &ServiceAllocation{ServiceSelectors: []labels.Selector{sel(web)}}, ns: "x"},
		{name: "both must hold", sa: &ServiceAllocation{Namespaces: []string{"y"}, ServiceSelectors: []labels.Selector{sel(web)}}, ns: "x", svcLb: web},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sa.Selects(tc.ns, tc.nsLabels, tc.svcLb); got != tc.want {
				t.Errorf("Selects = %t, want %t", got, tc.want)
			}
		})
	}
}
