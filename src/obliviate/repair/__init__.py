"""RePAIR: interactive unlearning (watchdog, surgeon, patient) and its edit ledger."""
