package agent

import "github.com/herald-lb/herald/speaker/status"

// Labels on the status objects a speaker writes (defined in package status).
const (
	LabelNode             = status.LabelNode
	LabelServiceName      = status.LabelServiceName
	LabelServiceNamespace = status.LabelServiceNamespace
	LabelPeer             = status.LabelPeer
)
