"""Trainer service: LoRA / DoRA fine-tuning jobs on a JetStream work queue."""
