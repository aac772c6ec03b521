"""Sales: leads, the lead pool (公海), routing by DMN decision tables, opportunities, hand-offs."""
