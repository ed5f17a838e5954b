"""What a run produced: top-K selection and training, lineages, loading runs, reports and export."""
