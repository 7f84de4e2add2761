"""The controllers a cluster runs, simulated: Deployments (and their ReplicaSets) and Argo
Rollouts' basic canary. They run while the emulator serves, one tick every few milliseconds."""
