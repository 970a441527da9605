"""nerdlab: reproduce and diagnose nerdctl/containerd bugs on real, instrumented builds."""
