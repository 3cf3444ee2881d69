// The page script (filled in with the upload form).
