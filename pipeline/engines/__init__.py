"""Engines only schedule `pipeline.batches.process_batch` over batches; they hold no extraction logic."""
