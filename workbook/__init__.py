"""Student helper package of the Sizing & TTA workbook: data, training helpers, plots and public checks."""
