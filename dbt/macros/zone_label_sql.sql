{#- Chinese label of a zone code (code table zone), plus EX = 解除出所 used by the flow marts. -#}
{% macro zone_label_sql(column) -%}
    case {{ column }}
        when '00' then '入所前'
        when '01' then '生理脱毒区'
        when '02' then '教育适应区'
        when '03' then '康复巩固区'
        when '04' then '回归指导区'
        when '99' then '其他'
        when 'EX' then '解除出所'
    end
{%- endmacro %}
