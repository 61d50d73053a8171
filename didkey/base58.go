package didkey

import "errors"

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		t[base58Alphabet[i]] = int8(i)
	}
	return t
}()

// ErrBase58 is returned for text outside the Bitcoin base58 alphabet.
var ErrBase58 = errors.New("didkey: invalid base58btc")

// maxBase58 bounds decoding work; did:key values are about 48 characters.
const maxBase58 = 1024

// Base58Encode encodes b with the Bitcoin alphabet; each leading zero byte
// becomes a leading '1'.
func Base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37
	out := make([]byte, len(b)*138/100+1)
	high := len(out) - 1
	for _, c := range b[zeros:] {
		carry := int(c)
		i := len(out) - 1
		for ; i > high || carry != 0; i-- {
			carry += 256 * int(out[i])
			out[i] = byte(carry % 58)
			carry /= 58
		}
		high = i
	}
	start := 0
	for start < len(out) && out[start] == 0 {
		start++
	}
	res := make([]byte, 0, zeros+len(out)-start)
	for i := 0; i < zeros; i++ {
		res = append(res, '1')
	}
	for _, d := range out[start:] {
		res = append(res, base58Alphabet[d])
	}
	return string(res)
}

// Base58Decode decodes Bitcoin-alphabet base58.
func Base58Decode(s string) ([]byte, error) {
	if s == "" || len(s) > maxBase58 {
		return nil, ErrBase58
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// log(58)/log(256) < 0.733
	out := make([]byte, len(s)*733/1000+1)
	high := len(out) - 1
	for i := zeros; i < len(s); i++ {
		d := base58Index[s[i]]
		if d < 0 {
			return nil, ErrBase58
		}
		carry := int(d)
		j := len(out) - 1
		for ; j > high || carry != 0; j-- {
			carry += 58 * int(out[j])
			out[j] = byte(carry)
			carry >>= 8
		}
		high = j
	}
	start := 0
	for start < len(out) && out[start] == 0 {
		start++
	}
	res := make([]byte, zeros, zeros+len(out)-start)
	return append(res, out[start:]...), nil
}
