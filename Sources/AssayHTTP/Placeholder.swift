// The admin API lives here.
