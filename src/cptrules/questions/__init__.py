"""Free-text questions → intent, codes and date of service, without a language model."""
