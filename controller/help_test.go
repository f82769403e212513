package main

import (
	"testing"

	"github.com/herald-lb/herald/internal/testing/maintest"
)

// TestMain runs main itself when the test binary is started by maintest.Run.
func TestMain(m *testing.M) { maintest.Main(m, "herald-controller", main) }

func TestHelpExitsZero(t *testing.T) { maintest.CheckHelp(t, "herald-controller", "-namespace") }
