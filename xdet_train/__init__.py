"""Training for LoRA detox adapters: strategies, configuration, SFT and DPO, manifests, tiny models."""
