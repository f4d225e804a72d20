module github.com/flashsale/seckill/static

go 1.26.0
