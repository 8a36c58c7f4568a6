package keystore

// DollarParams lets the tests write raw statements once, in SQLite's form,
// for both backends.
var DollarParams = dollarParams
