{{- define "nondet.generated" -}}
{{- $f := .Values.family -}}
{{- if eq $f "randAlphaNum" -}}{{ randAlphaNum 16 }}
{{- else if eq $f "randAlpha" -}}{{ randAlpha 16 }}
{{- else if eq $f "randNumeric" -}}{{ randNumeric 16 }}
{{- else if eq $f "randAscii" -}}{{ randAscii 16 }}
{{- else if eq $f "randBytes" -}}{{ randBytes 16 }}
{{- else if eq $f "randInt" -}}{{ randInt 0 1000000 }}
{{- else if eq $f "uuidv4" -}}{{ uuidv4 }}
{{- else if eq $f "shuffle" -}}{{ shuffle "abcdefghijklmnop" }}
{{- else if eq $f "genCA" -}}{{ (genCA "ca" 365).Cert }}
{{- else if eq $f "genCAWithKey" -}}{{ (genCAWithKey "ca" 365 "").Key }}
{{- else if eq $f "genPrivateKey" -}}{{ genPrivateKey "ecdsa" }}
{{- else if eq $f "genSelfSignedCert" -}}{{ (genSelfSignedCert "x" nil nil 365).Cert }}
{{- else if eq $f "genSelfSignedCertWithKey" -}}{{ (genSelfSignedCertWithKey "x" nil nil 365 "").Cert }}
{{- else if eq $f "genSignedCert" -}}{{ (genSignedCert "x" nil nil 365 (genCA "ca" 365)).Cert }}
{{- else if eq $f "genSignedCertWithKey" -}}{{ (genSignedCertWithKey "x" nil nil 365 (genCA "ca" 365) "").Cert }}
{{- else if eq $f "bcrypt" -}}{{ bcrypt "password" }}
{{- else if eq $f "htpasswd" -}}{{ htpasswd "user" "password" }}
{{- else if eq $f "encryptAES" -}}{{ encryptAES "key" "plaintext" }}
{{- else if eq $f "now" -}}{{ now | unixEpoch }}
{{- else if eq $f "nowDate" -}}{{ now | date "2006-01-02T15:04:05Z07:00" }}
{{- else if eq $f "date" -}}{{ date "2006-01-02" .Values.unset }}
{{- else if eq $f "dateInZone" -}}{{ dateInZone "2006-01-02" .Values.unset "UTC" }}
{{- else if eq $f "htmlDate" -}}{{ htmlDate .Values.unset }}
{{- else if eq $f "lowEntropy" -}}{{ mod (randNumeric 1) 2 }}
{{- else if eq $f "mapOrder" -}}{{ keys (dict "b" 1 "a" 2 "c" 3 "d" 4 "e" 5) | join "," }}/{{ values (dict "b" 1 "a" 2 "c" 3 "d" 4 "e" 5) | join "," }}
{{- end -}}
{{- end -}}
{{- define "nondet.compared" -}}
{{- $f := .Values.family -}}
{{- if eq $f "comparedDirect" -}}{{ if eq (randNumeric 1) "5" }}five{{ end }}
{{- else if eq $f "comparedPipe" -}}{{ if randNumeric 1 | eq "5" }}five{{ end }}
{{- else if eq $f "comparedVar" -}}{{ $n := randInt 0 10 }}{{ if lt $n 5 }}low{{ end }}
{{- end -}}
{{- end -}}
