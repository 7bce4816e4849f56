module kvcore

go 1.19
