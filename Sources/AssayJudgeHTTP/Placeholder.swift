// The HTTP judge lives here.
