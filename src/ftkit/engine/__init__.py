"""The training engine: one loop on accelerate.Accelerator that every task plugs into."""
