// Scorers live here.
